"""The RayJob state machine of KubeRay v1.7, for the dev stand-in. Pure.

Decides the next RayJob status and the actions that go with it, from what was observed:
  New -> Initializing (jobId, rayClusterName and startTime fixed before anything is created, so
  a restart never creates a second cluster or submits twice) -> Running (once the RayCluster is
  `ready`; the Ray job is submitted there when Ray does not know it yet) -> Complete | Failed
  (mirroring the Ray job's terminal status; endTime, succeeded/failed counts, reason AppFailed)
  -> the RayCluster deleted `ttlSecondsAfterFinished` after the end when
  `shutdownAfterJobFinishes`. `suspend: true` goes through Suspending (stop the Ray job, delete
  the cluster) to Suspended, and back to New when unset. activeDeadlineSeconds fails a RayJob
  with reason DeadlineExceeded.
Not modelled: backoffLimit retries (the RayJob fails once), InteractiveMode, cron schedules.
Must not do I/O or read clocks: `now` and every observation come in through `Observed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from .podstatus import rfc3339
from .raycluster import cluster_name_for

TERMINAL_JOB_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED")
SELECTOR_KEY = "ray.io/cluster"


class Action(StrEnum):
    CREATE_CLUSTER = "CreateCluster"
    SUBMIT = "Submit"
    STOP_JOB = "StopJob"
    DELETE_CLUSTER = "DeleteCluster"


@dataclass(frozen=True)
class RayInfo:
    """What the Ray Jobs API says about one submission."""

    status: str
    message: str = ""
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True)
class Observed:
    rayjob: dict
    cluster: dict | None        # the RayCluster named in status.rayClusterName, if it exists
    ray: RayInfo | None         # None: Ray has no job with status.jobId
    now: datetime
    dashboard: str              # host:port of the Ray dashboard jobs are submitted to
    cluster_suffix: str         # 5 random characters, used only when a cluster name is chosen


@dataclass(frozen=True)
class Decision:
    status: dict
    actions: tuple[Action, ...] = ()


def stable_job_id(name: str, uid: str, generation: int | None) -> str:
    """A submission id fixed by the RayJob's identity: a resubmission after a restart is refused by
    Ray as a duplicate, and a resumed (re-generationed) RayJob gets a fresh one."""
    return f"{name[:40]}-{uid[:8]}-g{generation or 1}"


def _ts(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=None) if text else None


def _naive(now: datetime) -> datetime:
    return now.replace(tzinfo=None)


def _ms(ms: int | None) -> str | None:
    return rfc3339(datetime.fromtimestamp(ms / 1000, UTC)) if ms else None


def _deadline_passed(o: Observed, st: dict) -> bool:
    limit = o.rayjob["spec"].get("activeDeadlineSeconds")
    start = _ts(st.get("startTime"))
    return bool(limit) and start is not None and _naive(o.now) >= start + timedelta(seconds=int(limit))


def _finish(o: Observed, st: dict, deployment: str, reason: str | None, message: str) -> dict:
    st.update(jobDeploymentStatus=deployment, reason=reason, message=message, endTime=rfc3339(o.now))
    if deployment == "Failed":
        st["failed"] = int(st.get("failed") or 0) + 1
    elif st.get("jobStatus") == "SUCCEEDED":
        st["succeeded"] = int(st.get("succeeded") or 0) + 1
    return st


def _deadline_failure(o: Observed, st: dict) -> dict:
    limit = o.rayjob["spec"]["activeDeadlineSeconds"]
    return _finish(o, st, "Failed", "DeadlineExceeded",
                   f"RayJob did not finish within activeDeadlineSeconds={limit}")


def _new(o: Observed, st: dict) -> Decision:
    spec, meta = o.rayjob["spec"], o.rayjob["metadata"]
    if spec.get("suspend"):
        return Decision({**st, "jobDeploymentStatus": "Suspended", "jobStatus": ""})
    selector = spec.get("clusterSelector") or {}
    st.update(
        jobId=(st.get("jobId") or spec.get("jobId")
               or stable_job_id(meta["name"], meta["uid"], meta.get("generation"))),
        rayClusterName=st.get("rayClusterName") or selector.get(SELECTOR_KEY)
        or cluster_name_for(meta["name"], o.cluster_suffix),
        jobStatus="", jobDeploymentStatus="Initializing", startTime=rfc3339(o.now),
        succeeded=int(st.get("succeeded") or 0), failed=int(st.get("failed") or 0),
    )
    return Decision(st)


def _to_suspending(st: dict) -> Decision:
    return Decision({**st, "jobDeploymentStatus": "Suspending"}, (Action.STOP_JOB,))


def _initializing(o: Observed, st: dict) -> Decision:
    spec = o.rayjob["spec"]
    if spec.get("suspend"):
        return _to_suspending(st)
    if _deadline_passed(o, st):
        return Decision(_deadline_failure(o, st))
    if o.cluster is None:
        if spec.get("clusterSelector"):
            return Decision({**st, "message": f"waiting for RayCluster {st['rayClusterName']}"})
        return Decision(st, (Action.CREATE_CLUSTER,))
    st["rayClusterStatus"] = o.cluster.get("status") or {}
    if st["rayClusterStatus"].get("state") != "ready":
        return Decision(st)
    st.update(jobDeploymentStatus="Running", dashboardURL=o.dashboard)
    return Decision(st)


def _running(o: Observed, st: dict) -> Decision:
    spec = o.rayjob["spec"]
    if spec.get("suspend"):
        return _to_suspending(st)
    if o.cluster is not None:
        st["rayClusterStatus"] = o.cluster.get("status") or {}
    if _deadline_passed(o, st):
        return Decision(_deadline_failure(o, st), (Action.STOP_JOB,))
    if o.ray is None:
        return Decision(st, (Action.SUBMIT,))
    st.update(jobStatus=o.ray.status, message=o.ray.message,
              rayJobInfo={k: v for k, v in (("startTime", _ms(o.ray.start_ms)),
                                            ("endTime", _ms(o.ray.end_ms))) if v})
    if o.ray.status in TERMINAL_JOB_STATUSES:
        failed = o.ray.status == "FAILED"
        # As KubeRay: STOPPED counts as Complete; only FAILED fails the RayJob.
        return Decision(_finish(o, st, "Failed" if failed else "Complete", "AppFailed" if failed else None,
                                o.ray.message))
    return Decision(st)


def _finished(o: Observed, st: dict) -> Decision:
    spec = o.rayjob["spec"]
    if not spec.get("shutdownAfterJobFinishes") or spec.get("clusterSelector") or o.cluster is None:
        return Decision(st)
    end = _ts(st.get("endTime")) or _naive(o.now)
    if _naive(o.now) < end + timedelta(seconds=int(spec.get("ttlSecondsAfterFinished") or 0)):
        return Decision(st)
    return Decision(st, (Action.DELETE_CLUSTER,))


def _suspending(o: Observed, st: dict) -> Decision:
    selector = o.rayjob["spec"].get("clusterSelector")
    if o.cluster is not None and not selector:
        return Decision(st, (Action.STOP_JOB, Action.DELETE_CLUSTER))
    # Reset all at once, as KubeRay does, so a resume starts from a clean New.
    st.update(jobDeploymentStatus="Suspended", jobStatus="", jobId="", dashboardURL="", message="",
              reason=None, rayJobInfo=None, rayClusterStatus=None,
              rayClusterName=st.get("rayClusterName") if selector else "")
    return Decision(st)


def _suspended(o: Observed, st: dict) -> Decision:
    if o.rayjob["spec"].get("suspend"):
        return Decision(st)
    return Decision({**st, "jobDeploymentStatus": "", "jobStatus": ""})


_HANDLERS = {"": _new, "New": _new, "Initializing": _initializing, "Running": _running,
             "Complete": _finished, "Failed": _finished, "Suspending": _suspending, "Suspended": _suspended}


def decide(o: Observed) -> Decision:
    """The next status (complete, for a merge patch) and the actions to carry out first."""
    status = dict(o.rayjob.get("status") or {})
    handler = _HANDLERS.get(status.get("jobDeploymentStatus") or "")
    if handler is None:  # Retrying, Waiting, Scheduled...: states this stand-in never enters
        return Decision(status)
    decision = handler(o, status)
    decision.status["observedGeneration"] = o.rayjob["metadata"].get("generation")
    return decision

