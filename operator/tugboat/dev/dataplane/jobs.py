"""Runs the pods of Tugboat workload Jobs on this machine and reports how they ended.

Decides which pods it runs (label `tugboat.dev/workload`, any value but `serve`, owned by a Job,
phase Running as kwok left them, not being deleted), runs the first container's command+args
with its env and materialized volumes, and writes the pod's terminal status from the real exit
code, so the real Job controller in kube-controller-manager marks the Job Complete or Failed.
A pod that is deleted while running has its process stopped.
Must not run a pod twice (a pod that already ended keeps its result) and must not decide Job
retries: that is the Job controller's business (a Failed pod is all it needs).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from ..stages import SERVE_WORKLOAD, WORKLOAD_LABEL
from . import hostproc
from .loop import ReconcileLoop, WatchTarget
from .materialize import VolumeMaterializer, resolve_env, work_dir
from .podspec import PodSpecError, container_argv, container_env, main_container, owner_kind
from .podstatus import rfc3339, terminated_status

# Exit code a kubelet reports when a container could not even start.
START_FAILED = 128


@dataclass
class Run:
    pod: dict
    proc: subprocess.Popen
    log_path: Path
    started_at: str = field(default_factory=lambda: rfc3339(datetime.now(UTC)))


def _key(pod: dict) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def is_job_workload(pod: dict) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return (WORKLOAD_LABEL in labels and labels[WORKLOAD_LABEL] != SERVE_WORKLOAD
            and owner_kind(pod) == "Job")


class JobRunner(ReconcileLoop):
    name = "jobs"
    targets = (WatchTarget("pods", label_selector=WORKLOAD_LABEL),)

    def __init__(self, api_client: client.ApiClient, state_dir: Path):
        super().__init__(api_client)
        self.state_dir = Path(state_dir)
        self.volumes = VolumeMaterializer(self.kube, self.state_dir)
        self.runs: dict[str, Run] = {}      # pod uid -> its running process
        self.finished: set[str] = set()     # pod uids whose result was written

    def busy(self) -> bool:
        return bool(self.runs)

    def reconcile_all(self) -> None:
        pods = [p for p in self.kube.list("v1", "Pod", label_selector=WORKLOAD_LABEL) if is_job_workload(p)]
        live = {p["metadata"]["uid"]: p for p in pods}
        for uid, pod in live.items():
            running = (pod.get("status") or {}).get("phase") == "Running"
            if pod["metadata"].get("deletionTimestamp") or not running:
                continue
            if uid not in self.runs and uid not in self.finished:
                self._guarded(pod, self._start)
        for uid, run in list(self.runs.items()):
            pod = live.get(uid)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                hostproc.stop(run.proc)
                del self.runs[uid]
                self.log.info("jobs: pod %s deleted: stopped pid %d", _key(run.pod), run.proc.pid)
            elif run.proc.poll() is not None:
                self._guarded(pod, lambda p, r=run, u=uid: self._report(u, r, p))
        self.finished &= set(live)  # forget pods that are gone

    def _guarded(self, pod: dict, fn) -> None:
        try:
            fn(pod)
            self.clear_error(_key(pod))
        except Exception as exc:  # noqa: BLE001 - one pod must not stop the others
            self.report_error(_key(pod), exc)

    def _start(self, pod: dict) -> None:
        meta, ns = pod["metadata"], pod["metadata"]["namespace"]
        container = main_container(pod["spec"])
        log_path = self.state_dir / "logs" / f"{ns}_{meta['name']}.log"
        # A MaterializeError (a ConfigMap not there yet) propagates: retried on a later pass, as
        # a kubelet retries mounts. A PodSpecError cannot heal: the pod fails like a container
        # that cannot start.
        try:
            mounts = self.volumes.mounts(ns, meta["name"], pod["spec"], container)
            env = container_env(resolve_env(self.kube, ns, meta, container), mounts)
            argv = container_argv(container, env, mounts, sys.executable)
        except PodSpecError as exc:
            self._write(pod, START_FAILED, str(exc), rfc3339(datetime.now(UTC)))
            self.finished.add(meta["uid"])
            self.log.info("jobs: pod %s cannot run: %s", _key(pod), exc)
            return
        proc = hostproc.start(argv, log_path, hostproc.base_env(env),
                              cwd=work_dir(self.state_dir, ns, meta["name"]))
        self.runs[meta["uid"]] = Run(pod, proc, log_path)
        self.log.info("jobs: pod %s (Job %s) started pid %d: %s", _key(pod),
                      _owner_name(pod), proc.pid, hostproc.describe(argv))

    def _report(self, uid: str, run: Run, pod: dict) -> None:
        code = hostproc.exit_code(run.proc.returncode)
        message = hostproc.last_line(run.log_path)
        self._write(pod, code, message, run.started_at)
        del self.runs[uid]
        self.finished.add(uid)
        self.log.info("jobs: pod %s exited %d -> %s (log %s)", _key(run.pod), code,
                      "Succeeded" if code == 0 else "Failed", run.log_path)

    def _write(self, pod: dict, code: int, message: str, started_at: str) -> None:
        now = rfc3339(datetime.now(UTC))
        status = terminated_status(pod, code, message, started_at, now)
        meta = pod["metadata"]
        self.kube.patch_status("v1", "Pod", meta["name"], meta["namespace"], status)

    def shutdown(self) -> None:
        for run in self.runs.values():
            hostproc.stop(run.proc)
            self.log.info("jobs: data plane stopping: stopped pid %d of pod %s", run.proc.pid, _key(run.pod))
        self.runs.clear()


def _owner_name(pod: dict) -> str:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("name", "?")
    return "?"
