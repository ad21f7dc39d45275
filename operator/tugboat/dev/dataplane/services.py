"""Local services the dev data plane offers to the workloads it runs: MLflow tracking and a Ray head.

Decides how each one is started (on 127.0.0.1 only, nothing phoned home, state under the data
plane's directory, sized for a 2-core machine), when it counts as up (MLflow's /health, the Ray
dashboard's /api/version), and records their addresses in DIR/services.json for the demo and the
tests.
Must not stop anything it did not start: a reused Ray cluster (RAY_ADDRESS) is left running, and
Ray is never stopped with `ray stop`, which would kill every Ray process on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tugboat_workloads.train.ray_local import local_ray_environment, prepare_home

from . import hostproc

log = logging.getLogger("tugboat.dev.dataplane.services")

RAY_START_MODES = ("start", "auto")
MLFLOW_START_TIMEOUT = 180.0
RAY_START_TIMEOUT = 180.0


@dataclass
class ServiceInfo:
    """What services.json says; None for a service the data plane was asked not to run."""

    mlflow_url: str | None = None
    mlflow_pid: int | None = None
    ray_dashboard_url: str | None = None
    ray_address: str | None = None
    ray_pid: int | None = None
    ray_managed: bool = False
    prometheus_url: str | None = None
    prometheus_pid: int | None = None

    def to_json(self) -> dict:
        return {
            "mlflow": {"url": self.mlflow_url, "pid": self.mlflow_pid} if self.mlflow_url else None,
            "prometheus": ({"url": self.prometheus_url, "pid": self.prometheus_pid}
                           if self.prometheus_url else None),
            "ray": ({"dashboardUrl": self.ray_dashboard_url, "address": self.ray_address,
                     "pid": self.ray_pid, "managed": self.ray_managed}
                    if self.ray_dashboard_url else None),
        }


class Services:
    def __init__(self, state_dir: Path, ray: str | None = "start", mlflow_port: int | None = 0):
        if ray is not None and ray not in RAY_START_MODES:
            raise ValueError(f"--ray-address must be one of {RAY_START_MODES} (or None), not {ray!r}")
        self.state_dir = Path(state_dir)
        self.ray_mode = ray
        self.mlflow_port = mlflow_port
        self.info = ServiceInfo()
        self._mlflow: subprocess.Popen | None = None
        self._ray: subprocess.Popen | None = None
        self._ray_temp: str | None = None

    @property
    def services_json(self) -> Path:
        return self.state_dir / "services.json"

    def start(self) -> ServiceInfo:
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            if self.mlflow_port is not None:
                self._start_mlflow(self.mlflow_port or hostproc.free_port())
            if self.ray_mode == "start":
                self._start_ray()
            elif self.ray_mode == "auto":
                self._reuse_ray()
        except BaseException:
            self.stop()
            raise
        self.write_info()
        return self.info

    def write_info(self) -> None:
        self.services_json.write_text(json.dumps(self.info.to_json(), indent=2) + "\n")

    def _start_mlflow(self, port: int) -> None:
        url = f"http://{hostproc.LOOPBACK}:{port}"
        log_path = self.state_dir / "logs" / "mlflow.log"
        argv = [sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{self.state_dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.state_dir / "mlartifacts"),
                "--host", hostproc.LOOPBACK, "--port", str(port),
                "--workers", "1"]  # one worker is plenty for a demo and spares the 2 cores
        log.info("services: starting MLflow on %s", url)
        # Job execution (GenAI jobs, trace rollups) spawns a pool of huey workers that tracking
        # and the model registry do not need.
        env = hostproc.base_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        self._mlflow = hostproc.start(argv, log_path, env, cwd=self.state_dir)
        hostproc.wait_http(f"{url}/health", self._mlflow, MLFLOW_START_TIMEOUT, "mlflow server", log_path)
        self.info.mlflow_url, self.info.mlflow_pid = url, self._mlflow.pid
        log.info("services: MLflow up at %s (pid %d)", url, self._mlflow.pid)

    def _ray_argv(self, gcs_port: int, dashboard_port: int) -> list[str]:
        return [str(Path(hostproc.venv_bin()) / "ray"), "start", "--head", "--block",
                "--num-cpus=2", "--object-store-memory=300000000",
                "--include-dashboard=true", f"--dashboard-host={hostproc.LOOPBACK}",
                f"--dashboard-port={dashboard_port}", f"--port={gcs_port}",
                # Fixed defaults (10001, 52365) would collide with other Ray instances here.
                f"--ray-client-server-port={hostproc.free_port()}",
                f"--dashboard-agent-listen-port={hostproc.free_port()}",
                # A private temp dir keeps other processes' ray.init() from attaching to this
                # head through /tmp/ray/ray_current_cluster. Short, for unix socket path limits.
                f"--temp-dir={self._ray_temp}", "--disable-usage-stats"]

    def _start_ray(self) -> None:
        gcs_port, dashboard_port = hostproc.free_port(), hostproc.free_port()
        self._ray_temp = tempfile.mkdtemp(prefix="tgb-ray-", dir="/tmp")
        url = f"http://{hostproc.LOOPBACK}:{dashboard_port}"
        log_path = self.state_dir / "logs" / "ray-head.log"
        # Loopback only, no telemetry, for the head and every job it runs (they inherit it).
        env = hostproc.base_env(local_ray_environment(prepare_home(Path(self._ray_temp) / "home")))
        log.info("services: starting Ray head (gcs %s:%d, dashboard %s)", hostproc.LOOPBACK, gcs_port, url)
        # --block keeps `ray start` in the foreground as the owner of every Ray process it
        # spawned: SIGTERM to it tears them all down, and nothing else on the machine.
        self._ray = hostproc.start(self._ray_argv(gcs_port, dashboard_port), log_path, env,
                                   cwd=self.state_dir)
        hostproc.wait_http(f"{url}/api/version", self._ray, RAY_START_TIMEOUT, "ray head", log_path)
        self.info.ray_dashboard_url, self.info.ray_address = url, f"{hostproc.LOOPBACK}:{gcs_port}"
        self.info.ray_pid, self.info.ray_managed = self._ray.pid, True
        log.info("services: Ray head up at %s (pid %d)", url, self._ray.pid)

    def _reuse_ray(self) -> None:
        # Imported here: only the Ray modes need Ray.
        from ray.job_submission import JobSubmissionClient

        address = os.environ.get("RAY_ADDRESS") or "auto"
        try:
            client = JobSubmissionClient(address)
        except Exception as exc:  # noqa: BLE001 - Ray raises assorted types; all mean "unreachable"
            raise RuntimeError(f"--ray-address auto: no Ray cluster reachable at {address!r}: {exc}") from exc
        url = client.get_address()
        if not url.startswith(f"http://{hostproc.LOOPBACK}:"):
            raise RuntimeError(f"--ray-address auto found {url}: the dev data plane only uses "
                               f"a Ray cluster on {hostproc.LOOPBACK}")
        self.info.ray_dashboard_url, self.info.ray_address = url, address
        log.info("services: reusing Ray cluster at %s", url)

    def stop(self) -> None:
        if self._ray is not None:
            # Only the leader: it drains the node through GCS, which must still be alive then.
            code = hostproc.stop(self._ray, grace=30, leader_only=True)
            log.info("services: Ray head stopped (exit %s)", code)
            self._ray = None
        if self._ray_temp:
            shutil.rmtree(self._ray_temp, ignore_errors=True)
            self._ray_temp = None
        if self._mlflow is not None:
            code = hostproc.stop(self._mlflow)
            log.info("services: MLflow stopped (exit %s)", code)
            self._mlflow = None

