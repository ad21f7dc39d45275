"""One real local control plane for the integration tier (etcd, kube-apiserver, KCM, scheduler,
kwok). Package-scoped: it and its operators stop when the tier's last test ends, so the e2e tier's
control plane never shares the two cores with this one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.helpers import wait_for
from tugboat.dev.cluster import DevCluster
from tugboat.dev.dataplane import DataPlane
from tugboat.dev.dataplane.services import Services
from tugboat.kube.client import Kube


def running_cluster(tmp_path_factory, prefix: str):
    workdir = tmp_path_factory.mktemp("kwok")
    c = DevCluster(name=f"{prefix}-{uuid.uuid4().hex[:6]}", workdir=workdir)
    try:
        c.up(log=lambda m: print(m, file=sys.stderr))
        yield c
    finally:
        c.down()


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory, "it")


@pytest.fixture(scope="package")
def kube(cluster) -> Kube:
    return Kube.connect(str(cluster.kubeconfig))


def host_dataplane(cluster, kube, tmp_path_factory, namespace: str, prometheus: bool = False):
    """The dev data plane without Ray or MLflow (Jobs and serving pods only), for `namespace`;
    with `prometheus`, also a real Prometheus scraping the serving pods."""
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    wait_for(lambda: kube.get_or_none("v1", "ServiceAccount", "default", namespace),
             what="default ServiceAccount")
    dp = DataPlane(cluster.kubeconfig, tmp_path_factory.mktemp(f"dataplane-{namespace}"), ray=None,
                   mlflow_port=None, prometheus_port=0 if prometheus else None)
    yield dp.start()
    dp.stop()


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory):
    """A local MLflow server (SQLite, 127.0.0.1) for the module; its URL."""
    services = Services(tmp_path_factory.mktemp("mlflow"), ray=None, mlflow_port=0)
    info = services.start()
    yield info.mlflow_url
    services.stop()


class OperatorProcess:
    """`tugboat run` as a real subprocess, logging to a file the test can read."""

    def __init__(self, kubeconfig: Path, log: Path, *args: str):
        self.log = log
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tugboat", "run", "--kubeconfig", str(kubeconfig), *args],
            stdout=self._fh, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def output(self) -> str:
        return self.log.read_text()

    @property
    def metrics_address(self) -> str:
        """host:port of its /metrics (the starter always passes --metrics-port)."""
        args = self.proc.args
        return f"127.0.0.1:{args[args.index('--metrics-port') + 1]}"

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not in operator log:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, as when a node dies under the operator."""
        self.proc.kill()
        self.proc.wait()
        self._fh.close()

    def stop(self) -> None:
        if self._fh.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._fh.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def operator_starter(cluster, tmp_path_factory):
    started: list[OperatorProcess] = []

    def start(*args: str, kubeconfig: Path | None = None) -> OperatorProcess:
        """`kubeconfig`: other credentials than the admin's (a ServiceAccount's token, say)."""
        log = tmp_path_factory.mktemp("operator") / "operator.log"
        op = OperatorProcess(kubeconfig or cluster.kubeconfig, log, "--metrics-port", str(_free_port()),
                             "--health-port", str(_free_port()), *args)
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


# Per module: tests that drive reconciles by hand (rollouts, tracks) must not race an operator
# another module left running on the shared cluster.
@pytest.fixture(scope="module")
def start_operator(cluster, tmp_path_factory):
    yield from operator_starter(cluster, tmp_path_factory)


@pytest.fixture(scope="package")
def artifact_root(tmp_path_factory) -> Path:
    """The session operator's artifact store (a local directory, as in dev)."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def operator(start_operator, artifact_root):
    """The module's active operator (highest priority)."""
    op = start_operator("--priority", "1000", "--artifact-root", str(artifact_root))
    op.wait_for_log("tugboat operator: priority 1000")
    return op
