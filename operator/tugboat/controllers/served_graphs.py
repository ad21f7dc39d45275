"""Which graph each serving pod of an AgentDeployment serves, as its runtime reported it to Prometheus.

Each pod decides at startup (its numerics probe on its own node's CPU) and exports
`tugboat_serve_graph_info{served=...} 1`; this counts those pods per graph. Returns None when the
operator has no Prometheus, so the status can say the served graph is not observable.
"""

from __future__ import annotations

import logging

from ..analysis.prometheus import Prometheus
from ..analysis.queries import escape_label_value
from ..analysis.results import QueryError, Value
from .settings import Settings

log = logging.getLogger(__name__)
GRAPHS = ("fp32", "fp16", "int8")
TIMEOUT_SECONDS = 2.0


def served_graphs(s: Settings, namespace: str, agent: str) -> dict[str, int] | None:
    if not s.prometheus_url:
        return None
    prometheus = Prometheus(s.prometheus_url, timeout=TIMEOUT_SECONDS)
    # The stable track's pods: status.graph is about them (a canary may serve another release).
    where = (f'namespace="{escape_label_value(namespace)}",'
             f'agent_deployment="{escape_label_value(agent)}",track="stable"')
    counts: dict[str, int] = {}
    for graph in GRAPHS:
        result = prometheus.query(f'count(tugboat_serve_graph_info{{{where},served="{graph}"}} == 1)')
        if isinstance(result, QueryError):
            log.warning("served graphs of %s/%s: %s", namespace, agent, result.message)
            return None
        counts[graph] = int(result.value) if isinstance(result, Value) else 0  # NoData: no such pod
    return counts
