"""Which graph of a release an AgentDeployment's pods are told to serve, and what its status says. Pure.

Decides from the preferred graph, the release's published graphs (its signed export report) and
what the pods reported (their startup probe verdict, counted by served graph): the runtime flags,
a waiting reason when the preferred graph cannot be served and fp32 is not allowed, and the
`status.graph` block. The pods have the last word: each re-runs the numerics probe on its node's CPU.
Must not read the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..api.agent_deployment import AgentDeploymentSpec, GraphStatus, ModelGraph

FP32 = ModelGraph.FP32


@dataclass(frozen=True)
class PublishedGraph:
    name: str
    published: bool
    reason: str | None = None


@dataclass(frozen=True)
class GraphPlan:
    graph: str              # --graph of the serving runtime
    fallback: bool          # --graph-fallback
    blocked: str | None     # why nothing may be deployed (preferred unpublished, no fallback)
    status: GraphStatus


def plan_graph(spec: AgentDeploymentSpec, release: str, graphs: tuple[PublishedGraph, ...],
               served: Mapping[str, int] | None) -> GraphPlan:
    """`served`: pods per graph they reported serving (None when the operator cannot observe it)."""
    preferred, fallback = spec.graph.preferred, spec.graph.fallback_to_fp32
    entry = next((g for g in graphs if g.name == preferred), None)
    # Releases exported before graphs were reported publish fp32 only.
    published = entry.published if entry is not None else preferred == FP32
    if not published:
        why = entry.reason if entry is not None and entry.reason else "not exported"
        note = f"release {release} did not publish the {preferred} graph ({why})"
        if not fallback:
            return GraphPlan(preferred, False, f"{note}; spec.graph.fallbackToFp32 is false",
                             GraphStatus(requested=preferred, served=None, message=note))
        return GraphPlan(FP32, False, None, GraphStatus(requested=preferred, served=FP32,
                                                        message=f"{note}: serving fp32"))
    live = {g: n for g, n in (served or {}).items() if n > 0}
    if not live:
        return GraphPlan(preferred, fallback, None,
                         GraphStatus(requested=preferred, served=None,
                                     message="waiting for the pods' numerics probe" if served is not None
                                     else "served graph not observable (the operator has no Prometheus)"))
    main = max(live, key=lambda g: (live[g], g == preferred))
    counts = ", ".join(f"{n} on {g}" for g, n in sorted(live.items()))
    message = f"pods: {counts}"
    if set(live) != {preferred}:
        message += f" ({preferred} failed the numerics probe on some nodes' CPUs)"
    return GraphPlan(preferred, fallback, None,
                     GraphStatus(requested=preferred, served=ModelGraph(main), message=message))
