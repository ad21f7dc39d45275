"""The local Ray cluster's Jobs API, as the fake KubeRay needs it (ray.job_submission).

Decides how "no such job" is told apart from "Ray unreachable" (None versus an exception), and
tags every submission with the RayJob it came from (metadata), so jobs whose RayJob is gone can
be found and stopped even after a restart of the data plane.
Must not talk to any Ray cluster but the one on 127.0.0.1 it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from .hostproc import LOOPBACK
from .rayjob_status import RayInfo

RAYJOB_META = "tugboat.dev/rayjob"
RAYJOB_UID_META = "tugboat.dev/rayjob-uid"


@dataclass(frozen=True)
class Submission:
    job_id: str
    entrypoint: str
    runtime_env: dict
    metadata: dict
    num_cpus: float | None = None
    num_gpus: float | None = None
    resources: dict | None = None


class RayJobs:
    def __init__(self, dashboard_url: str):
        if not dashboard_url.startswith(f"http://{LOOPBACK}:"):
            raise ValueError(f"Ray dashboard {dashboard_url!r} is not on {LOOPBACK}")
        self.dashboard_url = dashboard_url
        self._client = None

    @property
    def dashboard_host_port(self) -> str:
        return self.dashboard_url.removeprefix("http://")

    def _api(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient  # heavy: only when Ray is in use

            client = JobSubmissionClient(self.dashboard_url)
            # RAY_ADDRESS / RAY_API_SERVER_ADDRESS in the environment override the address given.
            if client.get_address().rstrip("/") != self.dashboard_url:
                raise RuntimeError(f"Ray Jobs client went to {client.get_address()} instead of "
                                   f"{self.dashboard_url}: unset RAY_ADDRESS/RAY_API_SERVER_ADDRESS")
            self._client = client
        return self._client

    def info(self, job_id: str) -> RayInfo | None:
        try:
            details = self._api().get_job_info(job_id)
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                return None
            self._client = None  # reconnect next time
            raise
        return RayInfo(status=str(details.status.value), message=details.message or "",
                       start_ms=details.start_time or None, end_ms=details.end_time or None)

    def submit(self, sub: Submission) -> None:
        self._api().submit_job(
            entrypoint=sub.entrypoint, submission_id=sub.job_id, runtime_env=sub.runtime_env,
            metadata=sub.metadata, entrypoint_num_cpus=sub.num_cpus, entrypoint_num_gpus=sub.num_gpus,
            entrypoint_resources=sub.resources)

    def stop(self, job_id: str) -> bool:
        try:
            return bool(self._api().stop_job(job_id))
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                return False
            raise

    def logs(self, job_id: str) -> str:
        return self._api().get_job_logs(job_id)

    def running_for_rayjobs(self) -> list[tuple[str, str, str]]:
        """(job id, RayJob uid, "ns/name") of every non-terminal job submitted for a RayJob."""
        out = []
        for job in self._api().list_jobs():
            meta = job.metadata or {}
            if RAYJOB_UID_META in meta and not job.status.is_terminal():
                out.append((job.submission_id, meta[RAYJOB_UID_META], meta.get(RAYJOB_META, "?")))
        return out
