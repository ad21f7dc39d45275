"""Small readers used by the integration tests."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from tugboat.api.base import API_VERSION


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}


def get(kube, kind: str, name: str, namespace: str | None = None) -> dict:
    return kube.get(API_VERSION, kind, name, namespace)


def condition_is(kube, kind, name, namespace, type_, status):
    def check():
        obj = get(kube, kind, name, namespace)
        c = conditions(obj).get(type_)
        return obj if c and c["status"] == status else None
    return check


def events_for(kube, name: str, namespace: str) -> list[dict]:
    return [e for e in kube.list("v1", "Event", namespace)
            if e["involvedObject"]["name"] == name]

def wait_for(predicate, timeout: float = 60, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def first_sample(prometheus_url: str, selector: str, lookback: str = "15m") -> float:
    """Timestamp of the oldest raw sample of `selector` within `lookback` (a range query of an
    instant vector selector returns the samples as scraped)."""
    query = urllib.parse.urlencode({"query": f"{selector}[{lookback}]"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=10) as resp:
        result = json.loads(resp.read())["data"]["result"]
    stamps = [float(ts) for series in result for ts, _ in series["values"]]
    assert stamps, f"no samples of {selector}"
    return min(stamps)
