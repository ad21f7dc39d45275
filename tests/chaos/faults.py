"""Fault injection on the real local control plane, and the watcher that records what the
objects went through while faults land.

kwokctl's binary runtime runs each component as a host process whose pid sits in
`clusters/<name>/pids/<component>.pid` and whose command line is recorded in `kwok.yaml`:
a component is stopped by its pid and started again from that record (the pid file is
rewritten, so `kwokctl delete cluster` still stops it).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import yaml

from tugboat.dev.cluster import DevCluster
from tugboat.dev.tools import tool


class ControlPlane:
    def __init__(self, cluster: DevCluster):
        self.cluster = cluster
        self.dir = cluster.workdir / "clusters" / cluster.name

    def _pid_file(self, component: str) -> Path:
        return self.dir / "pids" / f"{component}.pid"

    def pid(self, component: str) -> int:
        return int(self._pid_file(component).read_text())

    def stop(self, component: str) -> None:
        """SIGKILL, as when the machine under it dies: no graceful shutdown of watches."""
        pid = self.pid(component)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"{component} (pid {pid}) survived SIGKILL")
            time.sleep(0.1)

    def start(self, component: str, supervise: float = 12) -> None:
        """Start it, wait until the API server serves, then for `supervise` seconds restart what
        exits: a component that lost the API server dies up to its lease's renew deadline (10 s)
        after, as a kubelet would restart it."""
        self._launch(self._component(component))
        self.wait_serving()
        deadline = time.monotonic() + supervise
        while time.monotonic() < deadline:
            self.revive()
            time.sleep(1)

    def _launch(self, spec: dict) -> None:
        component = spec["name"]
        with open(self.dir / "logs" / f"{component}.log", "a") as log:
            proc = subprocess.Popen([spec["binary"], *spec["args"]], cwd=spec["workDir"], stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._pid_file(component).write_text(str(proc.pid))

    def revive(self) -> None:
        """Start again every component that exited. kube-controller-manager and kube-scheduler exit
        when they cannot renew their leader lease (an API server away for more than 10 s); a real
        node's kubelet restarts them as static pods, kwokctl's binary runtime does not."""
        for spec in self._components():
            if spec["name"] not in ("etcd", "kube-apiserver") and not _alive(self.pid(spec["name"])):
                self._launch(spec)

    def _components(self) -> list[dict]:
        return next(yaml.safe_load_all((self.dir / "kwok.yaml").read_text()))["components"]

    def _component(self, name: str) -> dict:
        return next(c for c in self._components() if c["name"] == name)

    def wait_serving(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.cluster.kubectl("get", "--raw", "/readyz", check=False).returncode != 0:
            if time.monotonic() > deadline:
                log = (self.dir / "logs" / "kube-apiserver.log").read_text(errors="replace")
                raise AssertionError("the API server did not come back; the end of its log:\n"
                                     + "\n".join(log.splitlines()[-40:]))
            time.sleep(0.5)

    def etcd_endpoint(self) -> str:
        arg = next(a for a in self._component("kube-apiserver")["args"] if a.startswith("--etcd-servers="))
        return arg.split("=", 1)[1]

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision: every older resourceVersion is gone."""
        out = subprocess.run([tool("etcdctl"), "--endpoints", self.etcd_endpoint(), "endpoint", "status",
                              "-w", "json"], capture_output=True, text=True, check=True, timeout=30)
        revision = json.loads(out.stdout)[0]["Status"]["header"]["revision"]
        subprocess.run([tool("etcdctl"), "--endpoints", self.etcd_endpoint(), "compact", str(revision)],
                       capture_output=True, text=True, check=True, timeout=30)
        return revision


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@dataclass
class Sample:
    at: float
    phase: str | None
    step: int
    conditions: frozenset[str]


@dataclass
class Recorder:
    """Polls one object's status on a thread; the samples show whether anything went backwards."""

    read: object  # () -> dict | None
    interval: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Recorder:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                obj = self.read()
            except Exception:  # noqa: BLE001 - the API server may be down: that is the fault
                obj = None
            if obj is not None:
                st = obj.get("status") or {}
                self.samples.append(Sample(time.monotonic(), st.get("phase"), int(st.get("step") or 0),
                                           frozenset(c["type"] for c in st.get("conditions") or [])))
            self._stop.wait(self.interval)

    def phases(self) -> list[str]:
        """Phases in the order seen, repeats collapsed."""
        seen: list[str] = []
        for s in self.samples:
            if s.phase and (not seen or seen[-1] != s.phase):
                seen.append(s.phase)
        return seen

    def assert_nothing_lost(self) -> None:
        steps = [s.step for s in self.samples]
        assert steps == sorted(steps), f"step went backwards: {steps}"
        lost = [(a.phase, sorted(a.conditions - b.conditions)) for a, b in pairwise(self.samples)
                if a.conditions - b.conditions]
        assert not lost, f"conditions disappeared from the status: {lost}"


_TRACEBACK_END = re.compile(r"^Traceback \(most recent call last\):\n(?:[ \t].*\n)*(.+)$", re.M)


def assert_no_crash_loop(op) -> None:
    """Alive, and no error raised over and over (a traceback's last line repeating)."""
    assert op.proc.poll() is None, f"operator exited {op.proc.returncode}:\n{op.output()[-3000:]}"
    ends = collections.Counter(_TRACEBACK_END.findall(op.output()))
    repeated = {line: n for line, n in ends.items() if n > 1}
    assert not repeated, f"repeated tracebacks: {repeated}\n{op.output()[-3000:]}"
