"""A stand-in for the KubeRay operator (v1.7) in the dev cluster: RayJob -> RayCluster -> pods,
with every entrypoint run on the local Ray cluster through the Ray Jobs API.

Decides nothing by itself: each pass gathers the RayClusters, their pods and the RayJobs, asks
the pure modules (raycluster, rayjob_status) what should exist and what the status is, carries
out the actions (create a RayCluster or pod, submit, stop, delete) and writes status once per
object, only when it changed. The real kube-scheduler places the pods (GPU pool or Pending); kwok
marks placed pods Running; this loop submits once the cluster is `ready`.
Before a submission, volumes the head pod template mounts are materialized under
DIR/mounts/<ns>/<rayjob>/ and mount paths in the entrypoint point there; the head container's env
goes to the job's runtime_env. Driver logs are kept in DIR/logs/<ns>_<rayjob>.log.
Must not keep state that a restart would lose: the submission id lives in status.jobId, and Ray
jobs whose RayJob is gone are found through their metadata and stopped.
"""

from __future__ import annotations

import os
import random
import string
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import yaml
from kubernetes import client

from . import hostproc
from .loop import ReconcileLoop, WatchTarget
from .materialize import VolumeMaterializer, resolve_env
from .podspec import container_env, main_container, rewrite_paths
from .podstatus import rfc3339
from .ray_jobs import RAYJOB_META, RAYJOB_UID_META, RayJobs, Submission
from .raycluster import CLUSTER_LABEL, build_ray_cluster, desired_pods, status_differs, summarize_cluster
from .rayjob_status import TERMINAL_JOB_STATUSES, Action, Observed, RayInfo, decide

RAY = "ray.io/v1"
# States whose progress shows only in Ray (no Kubernetes event will wake the loop): poll them.
POLLED_STATES = ("Running", "Suspending")
LOG_REFRESH_SECONDS = 5.0
SWEEP_SECONDS = 10.0


def _key(obj: dict) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _suffix() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=5))


class FakeKubeRay(ReconcileLoop):
    name = "kuberay"
    targets = (WatchTarget("rayjobs", "ray.io"), WatchTarget("rayclusters", "ray.io"),
               WatchTarget("pods", label_selector=CLUSTER_LABEL))

    def __init__(self, api_client: client.ApiClient, state_dir: Path, ray: RayJobs,
                 mlflow_url: str | None = None):
        super().__init__(api_client)
        self.state_dir = Path(state_dir)
        self.ray = ray
        self.volumes = VolumeMaterializer(self.kube, self.state_dir)
        # Env every job starts with; the pod's env and runtimeEnvYAML come on top.
        self.job_env = {"PATH": f"{hostproc.venv_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                        "PYTHONUNBUFFERED": "1"}
        if mlflow_url:
            self.job_env["MLFLOW_TRACKING_URI"] = mlflow_url
        self._active = False
        self._last_sweep = 0.0
        self._logs_at: dict[str, float] = {}

    def busy(self) -> bool:
        return self._active

    def log_path(self, rayjob: dict) -> Path:
        return self.state_dir / "logs" / f"{rayjob['metadata']['namespace']}_{rayjob['metadata']['name']}.log"

    def reconcile_all(self) -> None:
        clusters = self._reconcile_clusters()
        rayjobs = self.kube.list(RAY, "RayJob")
        active = False
        for rj in rayjobs:
            try:
                active |= self._reconcile_rayjob(rj, clusters)
                self.clear_error(_key(rj))
            except Exception as exc:  # noqa: BLE001 - one RayJob must not stop the others
                self.report_error(f"RayJob {_key(rj)}", exc)  # retried on the next (idle) pass
        self._active = active
        if time.monotonic() - self._last_sweep >= SWEEP_SECONDS:
            self._sweep_orphans(rayjobs)
            self._last_sweep = time.monotonic()

    # -- RayClusters and their pods -------------------------------------------------------------
    def _reconcile_clusters(self) -> dict[tuple[str, str], dict]:
        pods_of: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for pod in self.kube.list("v1", "Pod", label_selector=CLUSTER_LABEL):
            pods_of[(pod["metadata"]["namespace"], pod["metadata"]["labels"][CLUSTER_LABEL])].append(pod)
        out = {}
        for cluster in self.kube.list(RAY, "RayCluster"):
            key = (cluster["metadata"]["namespace"], cluster["metadata"]["name"])
            out[key] = cluster
            if cluster["metadata"].get("deletionTimestamp"):
                continue
            try:
                self._converge_pods(cluster, pods_of[key])
                out[key] = self._write_cluster_status(cluster, pods_of[key])
                self.clear_error(_key(cluster))
            except Exception as exc:  # noqa: BLE001
                self.report_error(f"RayCluster {_key(cluster)}", exc)
        return out

    def _converge_pods(self, cluster: dict, pods: list[dict]) -> None:
        existing = {p["metadata"]["name"]: p for p in pods}
        desired = desired_pods(cluster)
        for pod in desired:
            have = existing.get(pod["metadata"]["name"])
            if have is None:
                self.kube.apply(pod)
                self.log.info("kuberay: RayCluster %s: created pod %s (%s)", _key(cluster),
                              pod["metadata"]["name"], pod["metadata"]["labels"]["ray.io/node-type"])
            elif (have.get("status") or {}).get("phase") in ("Failed", "Succeeded") \
                    and not have["metadata"].get("deletionTimestamp"):
                # A Ray node must keep running: replace a dead pod, as KubeRay does.
                self.kube.delete("v1", "Pod", have["metadata"]["name"], have["metadata"]["namespace"])
                self.log.info("kuberay: RayCluster %s: deleted ended pod %s", _key(cluster),
                              have["metadata"]["name"])
        wanted = {p["metadata"]["name"] for p in desired}
        for name, pod in existing.items():
            if name not in wanted and not pod["metadata"].get("deletionTimestamp"):
                self.kube.delete("v1", "Pod", name, pod["metadata"]["namespace"])
                self.log.info("kuberay: RayCluster %s: deleted surplus pod %s", _key(cluster), name)

    def _write_cluster_status(self, cluster: dict, pods: list[dict]) -> dict:
        old = cluster.get("status") or {}
        new = summarize_cluster(cluster, pods, rfc3339(datetime.now(UTC)))
        if not status_differs(old, new):
            return cluster
        meta = cluster["metadata"]
        written = self.kube.patch_status(RAY, "RayCluster", meta["name"], meta["namespace"], new)
        if old.get("state") != new["state"]:
            self.log.info("kuberay: RayCluster %s: state %s -> %s (%d/%d workers ready)", _key(cluster),
                          old.get("state") or "-", new["state"] or "-", new["readyWorkerReplicas"],
                          new["desiredWorkerReplicas"])
        return written

    # -- RayJobs ---------------------------------------------------------------------------------
    def _reconcile_rayjob(self, rj: dict, clusters: dict) -> bool:
        """One pass over one RayJob; True while it still needs frequent attention."""
        if rj["metadata"].get("deletionTimestamp"):
            return False
        status = rj.get("status") or {}
        ns = rj["metadata"]["namespace"]
        cluster = clusters.get((ns, status.get("rayClusterName"))) if status.get("rayClusterName") else None
        info = None
        if status.get("jobDeploymentStatus") == "Running" and status.get("jobId"):
            info = self._observe(rj, status["jobId"])
        observed = Observed(rj, cluster, info, datetime.now(UTC), self.ray.dashboard_host_port, _suffix())
        decision = decide(observed)
        failure = None
        for action in decision.actions:
            try:
                self._act(action, rj, decision.status, cluster)
            except Exception as exc:  # noqa: BLE001 - the status (with its message) is still written
                failure = exc
                break
        self._write_rayjob_status(rj, status, decision.status)
        if failure is not None:
            raise failure
        return decision.status.get("jobDeploymentStatus") in POLLED_STATES

    def _observe(self, rj: dict, job_id: str) -> RayInfo | None:
        info = self.ray.info(job_id)
        if info is None:
            return None
        uid, terminal = rj["metadata"]["uid"], info.status in TERMINAL_JOB_STATUSES
        if terminal or time.monotonic() - self._logs_at.get(uid, 0.0) >= LOG_REFRESH_SECONDS:
            path = self.log_path(rj)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.ray.logs(job_id))
            self._logs_at[uid] = time.monotonic()
        if info.status in ("FAILED", "STOPPED"):
            # Ray's message carries up to 20k characters of log: keep its first line, add the last.
            first = (info.message.splitlines() or [""])[0].split(", last available logs")[0].rstrip(":.")
            last = hostproc.last_line(self.log_path(rj))
            message = f"{first}. Last log line: {last} (driver log {self.log_path(rj)})"
            return RayInfo(info.status, message, info.start_ms, info.end_ms)
        return info

    def _act(self, action: Action, rj: dict, status: dict, cluster: dict | None) -> None:
        ns, name = rj["metadata"]["namespace"], rj["metadata"]["name"]
        if action is Action.CREATE_CLUSTER:
            self.kube.apply(build_ray_cluster(rj, status["rayClusterName"]))
            self.log.info("kuberay: RayJob %s/%s: created RayCluster %s", ns, name, status["rayClusterName"])
        elif action is Action.SUBMIT:
            self._submit(rj, status)
        elif action is Action.STOP_JOB and status.get("jobId"):
            if self.ray.stop(status["jobId"]):
                self.log.info("kuberay: RayJob %s/%s: stopped Ray job %s", ns, name, status["jobId"])
        elif action is Action.DELETE_CLUSTER and cluster is not None \
                and not cluster["metadata"].get("deletionTimestamp"):
            self.kube.delete(RAY, "RayCluster", cluster["metadata"]["name"], ns)
            self.log.info("kuberay: RayJob %s/%s: deleted RayCluster %s", ns, name,
                          cluster["metadata"]["name"])

    def _submission(self, rj: dict, status: dict) -> Submission:
        spec, meta = rj["spec"], rj["metadata"]
        if not (spec.get("entrypoint") or "").strip():
            raise ValueError("spec.entrypoint is empty: nothing to submit")
        head = spec["rayClusterSpec"]["headGroupSpec"]["template"]
        container = main_container(head["spec"])
        mounts = self.volumes.mounts(meta["namespace"], meta["name"], head["spec"], container)
        head_meta = {"name": f"{status['rayClusterName']}-head", "namespace": meta["namespace"], "uid": ""}
        env = container_env(resolve_env(self.kube, meta["namespace"], head_meta, container), mounts)
        runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "") or {}
        if not isinstance(runtime_env, dict):
            raise ValueError("spec.runtimeEnvYAML must be a YAML mapping (a Ray runtime_env)")
        runtime_env["env_vars"] = {**self.job_env, **env, **(runtime_env.get("env_vars") or {})}
        return Submission(
            job_id=status["jobId"], entrypoint=rewrite_paths(spec["entrypoint"], mounts),
            runtime_env=runtime_env,
            metadata={RAYJOB_META: _key(rj), RAYJOB_UID_META: meta["uid"], **(spec.get("metadata") or {})},
            num_cpus=spec.get("entrypointNumCpus"), num_gpus=spec.get("entrypointNumGpus"),
            resources=yaml.safe_load(spec.get("entrypointResources") or "null"))

    def _submit(self, rj: dict, status: dict) -> None:
        try:
            sub = self._submission(rj, status)
            self.ray.submit(sub)
        except Exception as exc:
            # Visible to whoever watches the RayJob, not only in this process's log.
            status["message"] = f"submission to the local Ray cluster failed: {exc}"
            raise
        self.log.info("kuberay: RayJob %s: submitted Ray job %s: %s", _key(rj), sub.job_id,
                      sub.entrypoint.replace("\n", "\\n")[:300])

    def _write_rayjob_status(self, rj: dict, old: dict, new: dict) -> None:
        if not status_differs(old, new):
            return
        meta = rj["metadata"]
        self.kube.patch_status(RAY, "RayJob", meta["name"], meta["namespace"], new)
        before = (old.get("jobDeploymentStatus") or "New", old.get("jobStatus") or "-")
        after = (new.get("jobDeploymentStatus") or "New", new.get("jobStatus") or "-")
        if before != after:
            extra = f": {new['message']}" if after[0] == "Failed" and new.get("message") else ""
            self.log.info("kuberay: RayJob %s: %s/%s -> %s/%s%s", _key(rj), *before, *after, extra)

    def _sweep_orphans(self, rayjobs: list[dict]) -> None:
        """Stop Ray jobs whose RayJob no longer exists (what KubeRay's finalizer does on delete)."""
        live = {rj["metadata"]["uid"] for rj in rayjobs}
        try:
            for job_id, uid, ref in self.ray.running_for_rayjobs():
                if uid not in live and self.ray.stop(job_id):
                    self.log.info("kuberay: RayJob %s is gone: stopped Ray job %s", ref, job_id)
            self.clear_error("sweep")
        except Exception as exc:  # noqa: BLE001
            self.report_error("sweep", exc)
