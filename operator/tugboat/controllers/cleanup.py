"""What goes before an object goes (its finalizer's work), bounded in time: a child whose CRD is
missing or that hangs on someone else's finalizer never keeps the parent forever; the parent gets
a Warning event naming what was left behind."""

from __future__ import annotations

from datetime import datetime

from ..builders.training_run import run_selector
from ..kube.client import Kube
from ..kube.errors import NotFound

RAY_JOBS = ("ray.io/v1", "RayJob")


def timed_out(obj: dict, now: datetime, timeout: float) -> bool:
    """Has the object been deleting for longer than `timeout` seconds?"""
    since = obj["metadata"].get("deletionTimestamp")
    if not since:
        return False
    return (now - datetime.fromisoformat(str(since).replace("Z", "+00:00"))).total_seconds() > timeout


def stop_ray_jobs(kube: Kube, owner: dict, now: datetime, timeout: float,
                  kind: tuple[str, str] = RAY_JOBS) -> str | None:
    """Delete the TrainingRun's RayJobs and wait until they are gone. Returns what is still
    awaited (retry later), or None when the TrainingRun may go."""
    meta = owner["metadata"]
    try:
        left = kube.list(*kind, meta["namespace"], label_selector=run_selector(meta["name"]))
    except NotFound:
        kube.event(owner, "Warning", "CleanupSkipped",
                   f"{kind[1]} ({kind[0]}) is not served by this cluster: no training to stop")
        return None
    if not left:
        return None
    names = [j["metadata"]["name"] for j in left]
    if timed_out(owner, now, timeout):
        held = {n: j["metadata"].get("finalizers") or [] for n, j in zip(names, left, strict=True)}
        kube.event(owner, "Warning", "CleanupTimedOut",
                   f"gave up waiting {timeout:.0f}s for {kind[1]}(s) to go: "
                   + "; ".join(f"{n} (finalizers: {', '.join(f) or 'none'})" for n, f in held.items())
                   + "; they are left behind for a person to clean up")
        return None
    for name in names:
        kube.delete(*kind, name, meta["namespace"], propagation="Foreground")
    return f"waiting for {len(names)} {kind[1]}(s) to stop: {', '.join(names)}"
