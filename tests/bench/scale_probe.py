"""What the scale benchmark measures, without Kubernetes I/O: settledness of an object, percentiles,
the operator's CPU and RSS from /proc, and apiserver_request_total parsed from /metrics text."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path

_SAMPLE = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def settled(obj: dict) -> bool:
    """Status caught up with the spec: observedGeneration == generation and conditions set."""
    st = obj.get("status") or {}
    return bool(st.get("conditions")) and st.get("observedGeneration") == obj["metadata"].get("generation")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def proc_stats(pid: int, proc: Path = Path("/proc")) -> dict:
    """CPU seconds (user+system) and current RSS in MB of one process."""
    fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_kb = 0
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return {"cpu_seconds": cpu, "rss_mb": rss_kb / 1024}


def request_counts(metrics_text: str) -> Counter:
    """apiserver_request_total summed by (verb, resource); the metric carries no user-agent."""
    out: Counter = Counter()
    for line in metrics_text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            labels = dict(_LABEL.findall(m["labels"]))
            out[f'{labels.get("verb", "?")} {labels.get("resource", "")}'.strip()] += float(m["value"])
    return out


def operator_counts(metrics_text: str) -> Counter:
    """From the operator's own /metrics: reconcile passes by kind ("reconcile Tenant") and its
    client's API requests by verb and kind ("get RayJob"), to name what keeps an idle one busy."""
    out: Counter = Counter()
    for line in metrics_text.splitlines():
        name, _, rest = line.partition("{")
        if name not in ("tugboat_reconcile_total", "tugboat_api_requests_total"):
            continue
        labels = dict(_LABEL.findall(rest.rpartition("}")[0]))
        verb = "reconcile" if name == "tugboat_reconcile_total" else labels.get("verb", "?")
        out[f'{verb} {labels.get("kind", "?")}'] += float(rest.rpartition("}")[2])
    return out


def delta(after: Counter, before: Counter) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] - before.get(k, 0) > 0}
