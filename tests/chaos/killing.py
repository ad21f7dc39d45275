"""SIGKILL the operator at every point of an object's life the test can see, and start it again."""

from __future__ import annotations

import time
from collections.abc import Callable


def kill_at_each_point(operators, read: Callable[[], dict | None], point: Callable[[dict], str | None],
                       final: tuple[str, ...], timeout: float = 360):
    """Kill and restart the operator the first time each point (`point(obj)`, e.g. the phase) is
    seen, the final one included; return the operator running at the end and the points killed at."""
    op, killed = operators(), []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = read()
        here = point(obj) if obj else None
        if here is not None and here not in killed:
            op.kill()
            killed.append(here)
            op = operators()
        if obj and (obj.get("status") or {}).get("phase") in final:
            return op, killed
        time.sleep(0.2)
    raise AssertionError(f"no final phase {final} within {timeout}s; killed at {killed}; last {obj!r}")


def in_order(seen: list[str], order: list[str]) -> bool:
    """Phases only move forward (an unknown phase is out of order)."""
    ranks = [order.index(p) if p in order else -1 for p in seen]
    return -1 not in ranks and ranks == sorted(ranks)
