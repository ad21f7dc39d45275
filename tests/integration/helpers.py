"""Small readers used by the integration tests."""

from __future__ import annotations

import time

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
