"""Pod status a kubelet would write for a container the data plane runs on the host. Pure.

Decides the status of a finished container (phase Succeeded/Failed, a `terminated` state with
exit code, reason and message, Ready=False) and of a long-lived one (Ready follows its readiness
probe; a crashed one waits in CrashLoopBackOff). Returns full lists (conditions,
containerStatuses) because a JSON merge patch replaces lists whole.
Must not read clocks or the cluster: times and the observed pod come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping


def rfc3339(ts) -> str:
    """A datetime as the API server writes it (seconds, UTC, 'Z')."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def with_condition(conditions: list[dict], type_: str, status: str, now: str,
                    reason: str | None = None, message: str | None = None) -> list[dict]:
    out, found = [], False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(cond)
            continue
        found = True
        moved = cond.get("status") != status
        new = {"type": type_, "status": status,
               "lastTransitionTime": now if moved else cond.get("lastTransitionTime", now)}
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        out.append(new)
    if not found:
        out.append({"type": type_, "status": status, "lastTransitionTime": now,
                    **({"reason": reason} if reason else {}), **({"message": message} if message else {})})
    return out


def _readiness(pod: Mapping, ready: bool, now: str, reason: str | None, message: str | None) -> list[dict]:
    status = "True" if ready else "False"
    conditions = list((pod.get("status") or {}).get("conditions") or [])
    for type_ in ("ContainersReady", "Ready"):
        conditions = with_condition(conditions, type_, status, now,
                                     None if ready else reason, None if ready else message)
    return conditions


def _container_status(container: Mapping, state: dict, ready: bool, restarts: int,
                      last_state: dict | None = None) -> dict:
    out = {"name": container["name"], "image": container.get("image", ""), "ready": ready,
           "started": "running" in state, "restartCount": restarts, "state": state}
    if last_state:
        out["lastState"] = last_state
    return out


def terminated_status(pod: Mapping, exit_code: int, message: str, started_at: str,
                      finished_at: str) -> dict:
    """Status of a run-to-completion pod whose (first) container exited with `exit_code`."""
    ok = exit_code == 0
    containers = pod["spec"]["containers"]
    terminated = {"exitCode": exit_code, "reason": "Completed" if ok else "Error",
                  "startedAt": started_at, "finishedAt": finished_at}
    if message:
        terminated["message"] = message
    statuses = [_container_status(containers[0], {"terminated": terminated}, False, 0)]
    # Containers the data plane did not run end with the main one (kwok "ran" them).
    for extra in containers[1:]:
        statuses.append(_container_status(extra, {"terminated": {
            "exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": finished_at}},
            False, 0))
    return {
        "phase": "Succeeded" if ok else "Failed",
        "conditions": _readiness(pod, False, finished_at, "PodCompleted" if ok else "PodFailed", None),
        "containerStatuses": statuses,
    }


def unstartable_status(pod: Mapping, message: str, now: str) -> dict:
    """A container that can never start (kubelet: CreateContainerError); the pod stays Pending-like."""
    containers = pod["spec"]["containers"]
    state = {"waiting": {"reason": "CreateContainerError", "message": message}}
    return {"conditions": _readiness(pod, False, now, "ContainersNotReady", message),
            "containerStatuses": [_container_status(c, state, False, 0) for c in containers]}


def serving_status(pod: Mapping, ready: bool, restarts: int, now: str, started_at: str,
                   crashed: tuple[int, str] | None = None) -> dict:
    """Status of a long-lived pod: running (Ready as probed) or, after a crash, waiting to restart."""
    containers = pod["spec"]["containers"]
    if crashed is None:
        state, last = {"running": {"startedAt": started_at}}, None
        reason, message = "ContainersNotReady", "readiness probe has not passed yet"
    else:
        code, why = crashed
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": why}}
        last = {"terminated": {"exitCode": code, "reason": "Error", "message": why,
                               "startedAt": started_at, "finishedAt": now}}
        reason, message = "ContainersNotReady", f"container exited with code {code}"
    statuses = [_container_status(containers[0], state, ready, restarts, last)]
    for extra in containers[1:]:
        statuses.append(_container_status(extra, {"running": {"startedAt": started_at}}, ready, 0))
    return {"conditions": _readiness(pod, ready, now, reason, message), "containerStatuses": statuses}
