"""Runs serving pods (label `tugboat.dev/workload=serve`) as long-lived processes on their pod IPs.

Decides, per pod: where it listens (its pod IP, which the dev cluster's kwok hands out inside
127.0.0.0/8, and its container port: the container's --port/--host are replaced, as a container
would bind inside its own network namespace), the process (command+args, env, materialized
volumes), readiness (Ready follows GET <readiness path, default /readyz> answering 200, probed
every pass, as a kubelet's readiness probe), restarts after a crash with a doubling back-off
(CrashLoopBackOff meanwhile), and the end of the process when the pod is deleted. So a pod's
status.podIP and container port answer, and the gateway, Prometheus and tests reach pods there
(not through EndpointSlices: the API server refuses loopback addresses in them). Dev fault rules
(faults.py, DIR/faults.json) add the runtime's fault flags to the pods they match. The mapping is
also published in DIR/endpoints.json
({"<ns>/<pod>": {"ip", "port", "pid", "service"}}).
A pod whose IP is not a loopback address is refused (its status says why), never bound or probed.
Must never send traffic to a Service's cluster IP or to a pod IP outside 127.0.0.0/8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from ..loopback import NotLoopback, require_loopback
from ..stages import SERVE_WORKLOAD, WORKLOAD_LABEL
from . import hostproc
from .faults import fault_env, read_rules
from .loop import ReconcileLoop, WatchTarget
from .materialize import VolumeMaterializer, resolve_env, work_dir
from .podspec import (
    PodSpecError,
    container_argv,
    container_env,
    container_port,
    main_container,
    readiness_path,
    with_listen,
)
from .podstatus import rfc3339, serving_status, unstartable_status

SERVE_SELECTOR = f"{WORKLOAD_LABEL}={SERVE_WORKLOAD}"
MAX_BACKOFF = 60.0


@dataclass
class Server:
    pod: dict
    ip: str
    port: int
    argv: list[str]
    env: dict
    cwd: Path
    log_path: Path
    proc: subprocess.Popen | None = None
    started_at: str = ""
    restarts: int = 0
    ready: bool = False
    crashed: tuple[int, str] | None = None
    restart_at: float = 0.0
    written: dict = field(default_factory=dict)  # last status we wrote, to skip no-op writes


def _key(pod: dict) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _service_of(pod: dict) -> str | None:
    labels = pod["metadata"].get("labels") or {}
    return labels.get("app") or labels.get("app.kubernetes.io/name")


class ServingRunner(ReconcileLoop):
    name = "serving"
    selector = SERVE_SELECTOR
    targets = (WatchTarget("pods", label_selector=SERVE_SELECTOR),)
    busy_interval = 1.0
    endpoints_file = "endpoints.json"

    def __init__(self, api_client: client.ApiClient, state_dir: Path):
        super().__init__(api_client)
        self.state_dir = Path(state_dir)
        self.volumes = VolumeMaterializer(self.kube, self.state_dir)
        self.servers: dict[str, Server] = {}  # pod uid -> its server
        self.unrunnable: set[str] = set()     # pod uids whose spec can never run here

    @property
    def endpoints_json(self) -> Path:
        return self.state_dir / self.endpoints_file

    def busy(self) -> bool:
        return bool(self.servers)

    def reconcile_all(self) -> None:
        pods = {p["metadata"]["uid"]: p for p in self.kube.list("v1", "Pod", label_selector=self.selector)}
        self.unrunnable &= set(pods)
        changed = False
        for uid, server in list(self.servers.items()):
            pod = pods.get(uid)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                # At once, never drained: kwok hands a deleted pod's IP to the next pod.
                self._stop_server(uid, server, "pod deleted")
                changed = True
        for uid, pod in pods.items():
            running = (pod.get("status") or {}).get("phase") == "Running"
            if pod["metadata"].get("deletionTimestamp") or not running:
                continue
            if uid not in self.servers and uid not in self.unrunnable:
                changed |= self._guarded(pod, self._prepare)
            if uid in self.servers:
                self.servers[uid].pod = pod
                changed |= self._guarded(pod, lambda _p, s=self.servers[uid]: self._tend(s))
        if changed:
            self._write_endpoints()

    def _guarded(self, pod: dict, fn) -> bool:
        try:
            result = bool(fn(pod))
            self.clear_error(_key(pod))
            return result
        except Exception as exc:  # noqa: BLE001 - one pod must not stop the others
            self.report_error(_key(pod), exc)
            return False

    def _prepare(self, pod: dict) -> bool:
        meta, ns = pod["metadata"], pod["metadata"]["namespace"]
        container = main_container(pod["spec"])
        pod_ip = (pod.get("status") or {}).get("podIP")
        if not pod_ip:
            return False  # kwok writes it with Running; a later pass sees it
        try:  # a MaterializeError (a ConfigMap not there yet) propagates and is retried
            ip = require_loopback(pod_ip, f"the IP of pod {_key(pod)}")
            mounts = self.volumes.mounts(ns, meta["name"], pod["spec"], container)
            env = container_env(resolve_env(self.kube, ns, meta, container), mounts)
            if faults := fault_env(read_rules(self.state_dir), pod):
                env |= faults
                self.log.warning("%s: pod %s starts with DEV fault injection %s", self.name, _key(pod),
                                 faults)
            argv = container_argv(container, env, mounts, sys.executable)
            port, argv, env = self._listen(pod, container, ip, argv, env)
        except (PodSpecError, NotLoopback) as exc:
            status = unstartable_status(pod, str(exc), rfc3339(datetime.now(UTC)))
            self.kube.patch_status("v1", "Pod", meta["name"], ns, status)
            self.unrunnable.add(meta["uid"])
            self.log.warning("%s: pod %s cannot run: %s", self.name, _key(pod), exc)
            return False
        server = Server(pod, ip, port, argv, env, work_dir(self.state_dir, ns, meta["name"]),
                        self.state_dir / "logs" / f"{ns}_{meta['name']}.log")
        self.servers[meta["uid"]] = server
        self._launch(server)
        return True

    def _listen(self, pod: dict, container: dict, ip: str, argv: list[str],
                env: dict) -> tuple[int, list[str], dict]:
        """The port to probe, and the argv and env that make the process listen on the pod IP."""
        port = container_port(container)
        return port, with_listen(argv, ip, port), env

    def _probe_url(self, server: Server) -> str:
        return f"http://{server.ip}:{server.port}{readiness_path(main_container(server.pod['spec']))}"

    def _launch(self, server: Server) -> None:
        server.proc = hostproc.start(server.argv, server.log_path, hostproc.base_env(server.env),
                                     cwd=server.cwd, append=server.restarts > 0)
        server.started_at, server.crashed, server.ready = rfc3339(datetime.now(UTC)), None, False
        self.log.info("%s: pod %s on %s:%d pid %d%s: %s", self.name, _key(server.pod), server.ip, server.port,
                      server.proc.pid, f" (restart {server.restarts})" if server.restarts else "",
                      hostproc.describe(server.argv))

    def _tend(self, server: Server) -> bool:
        """Restart a crashed process when its back-off is over, probe a live one, write status."""
        changed = False
        if server.proc is not None and server.proc.poll() is not None and server.crashed is None:
            code = hostproc.exit_code(server.proc.returncode)
            server.crashed = (code, hostproc.last_line(server.log_path) or f"exit code {code}")
            server.ready = False
            server.restart_at = time.monotonic() + min(MAX_BACKOFF, 2.0 ** server.restarts)
            self.log.info("%s: pod %s exited %d; restarting in %.0fs", self.name, _key(server.pod), code,
                          server.restart_at - time.monotonic())
        if server.crashed is not None and time.monotonic() >= server.restart_at:
            server.restarts += 1
            self._launch(server)
            changed = True  # a new pid for endpoints.json
        if server.crashed is None:
            ready = hostproc.http_ok(self._probe_url(server))
            if ready != server.ready:
                self.log.info("%s: pod %s %s", self.name, _key(server.pod), "Ready" if ready else "not Ready")
            server.ready = ready
        self._write_status(server)
        return changed

    def _write_status(self, server: Server) -> None:
        now = rfc3339(datetime.now(UTC))
        status = serving_status(server.pod, server.ready, server.restarts, now, server.started_at,
                                server.crashed)
        # Compare without timestamps: only a real change is worth a write.
        summary = {"ready": server.ready, "restarts": server.restarts, "crashed": server.crashed,
                   "phase_ok": (server.pod.get("status") or {}).get("phase") == "Running"}
        if summary == server.written and self._pod_agrees(server):
            return
        meta = server.pod["metadata"]
        self.kube.patch_status("v1", "Pod", meta["name"], meta["namespace"], status)
        server.written = summary

    @staticmethod
    def _pod_agrees(server: Server) -> bool:
        conditions = (server.pod.get("status") or {}).get("conditions") or []
        conds = {c.get("type"): c.get("status") for c in conditions}
        return conds.get("Ready") == ("True" if server.ready else "False")

    def _stop_server(self, uid: str, server: Server, why: str) -> None:
        if server.proc is not None:
            code = hostproc.stop(server.proc)
            self.log.info("%s: pod %s: %s: stopped pid %d (exit %s)", self.name, _key(server.pod), why,
                          server.proc.pid, code)
        del self.servers[uid]

    def _write_endpoints(self) -> None:
        data = {_key(s.pod): {"ip": s.ip, "port": s.port, "pid": s.proc.pid if s.proc else None,
                              "service": _service_of(s.pod)}
                for s in self.servers.values()}
        tmp = self.endpoints_json.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.endpoints_json)  # atomic: readers never see half a file

    def shutdown(self) -> None:
        for uid, server in list(self.servers.items()):
            self._stop_server(uid, server, "data plane stopping")
        self._write_endpoints()
