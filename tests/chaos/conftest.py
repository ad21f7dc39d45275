"""`make chaos`: the operator under faults on the real local cluster (control plane, dev data plane
with Ray and MLflow). Every module here marks its tests `chaos`, which the default run deselects.

Each module starts the operators it needs and stops them when it ends: a standalone operator and an
HA pair must never reconcile side by side.
"""

from __future__ import annotations

import collections

import pytest
import yaml

from tests.integration.conftest import operator_starter, running_cluster
from tests.integration.helpers import get, wait_for
from tugboat.dev.dataplane.plane import DataPlane
from tugboat.dev.tools import repo_root
from tugboat.kube.client import Kube

from .faults import ControlPlane

NS = "ml-platform"
EXAMPLES = repo_root() / "examples"
# Each test stops by itself: bounded waits inside, this as the backstop.
CHAOS = [pytest.mark.chaos, pytest.mark.timeout(480)]


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    c = next(gen := running_cluster(tmp_path_factory, "chaos"))
    c.trust(signing_namespaces=(NS,))
    yield c
    next(gen, None)


@pytest.fixture(scope="package")
def kube(cluster) -> Kube:
    return Kube.connect(str(cluster.kubeconfig))


@pytest.fixture(scope="package")
def control_plane(cluster) -> ControlPlane:
    return ControlPlane(cluster)


@pytest.fixture(scope="package")
def dataplane(cluster, tmp_path_factory):
    plane = DataPlane(cluster.kubeconfig, tmp_path_factory.mktemp("dataplane")).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="package")
def artifact_root(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def operators(cluster, dataplane, artifact_root, tmp_path_factory):
    """start(*args, standalone=True) -> a running operator; all stop when the module ends."""
    starter = operator_starter(cluster, tmp_path_factory)
    start = next(starter)

    def launch(*args: str, standalone: bool = True):
        op = start(*(("--standalone",) if standalone else ()), "--mlflow-uri", dataplane.info.mlflow_url,
                   "--artifact-root", str(artifact_root), *args)
        op.wait_for_log("tugboat operator: priority", timeout=120)
        return op

    yield launch
    next(starter, None)


def training_run(name: str, steps: int = 40, interval: int = 20) -> dict:
    doc = yaml.safe_load((EXAMPLES / "10-trainingrun.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["training"].update(steps=steps, checkpointInterval=interval)
    doc["spec"]["resources"].update(workers=1, gpusPerWorker=1)
    doc["spec"]["mlflow"]["experiment"] = "chaos"
    return doc


def model_release(name: str, training: str) -> dict:
    doc = yaml.safe_load((EXAMPLES / "20-modelrelease.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["source"]["trainingRun"] = training
    doc["spec"]["modelLine"] = f"chaos-{name}"  # one registry model per release: versions counted alone
    return doc


def apply(cluster, doc: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def reader(kube, kind: str, name: str):
    return lambda: kube.get_or_none("tugboat.dev/v1alpha1", kind, name, NS)


def settled(kube, kind: str, name: str, *phases: str, timeout: float = 300) -> dict:
    def check():
        obj = get(kube, kind, name, NS)
        return obj if (obj.get("status") or {}).get("phase") in phases else None
    return wait_for(check, timeout=timeout, interval=0.5, what=f"{kind} {name} in {phases}")


def ray_jobs(kube, training: str) -> list[dict]:
    return kube.list("ray.io/v1", "RayJob", NS, label_selector=f"tugboat.dev/trainingrun={training}")


def release_jobs(kube, release: str) -> dict[str, list[str]]:
    """workload role (export, sign) -> uids of its Jobs."""
    jobs = collections.defaultdict(list)
    for j in kube.list("batch/v1", "Job", NS, label_selector=f"tugboat.dev/modelrelease={release}"):
        jobs[j["metadata"]["labels"]["tugboat.dev/workload"]].append(j["metadata"]["uid"])
    return dict(jobs)
