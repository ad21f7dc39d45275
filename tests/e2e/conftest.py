"""The whole lineage on one machine: a real control plane, the dev data plane (local Ray, MLflow,
host processes for pods), and the operator pointed at them; package-scoped like the integration
tier's, so each tier's control plane runs only while that tier does."""

from __future__ import annotations

import pytest

from tests.integration.conftest import operator_starter, running_cluster
from tugboat.dev.api_keys import issue_api_key
from tugboat.dev.dataplane.plane import DataPlane
from tugboat.kube.client import Kube


@pytest.fixture(scope="package")
def cluster(tmp_path_factory):
    c = next(gen := running_cluster(tmp_path_factory, "e2e"))
    c.trust(signing_namespaces=("ml-platform",))
    yield c
    next(gen, None)


@pytest.fixture(scope="package")
def kube(cluster) -> Kube:
    return Kube.connect(str(cluster.kubeconfig))


@pytest.fixture(scope="package")
def api_keys(kube) -> dict[str, str]:
    """One caller key per example tenant (namespace = tenant), issued before their serving pods
    start: pods read the keys file when they start."""
    tenants = ("team-a", "team-b")
    for ns in tenants:
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return {ns: issue_api_key(kube, ns, ns, "e2e") for ns in tenants}


@pytest.fixture(scope="package")
def dataplane(cluster, tmp_path_factory):
    # Prometheus and the gateway too: the rollout tests judge canaries through them.
    plane = DataPlane(cluster.kubeconfig, tmp_path_factory.mktemp("dataplane"), prometheus_port=0,
                      gateway_port=0).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="package")
def artifact_root(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="package")
def start_e2e_operator(cluster, dataplane, artifact_root, tmp_path_factory):
    """Starts an operator pointed at the data plane's MLflow, Prometheus and the artifact root
    (again after a test stopped or killed one: restarts must lose nothing)."""
    starter = operator_starter(cluster, tmp_path_factory)
    start = next(starter)

    def started():
        op = start("--standalone", "--mlflow-uri", dataplane.info.mlflow_url,
                   "--prometheus-url", dataplane.info.prometheus_url, "--artifact-root", str(artifact_root))
        op.wait_for_log("tugboat operator: priority")
        dataplane.prometheus.scrape_operator(op.metrics_address)  # the dashboard's series
        live[:] = [op]
        return op

    live: list = []
    started.live = live
    yield started
    next(starter, None)


@pytest.fixture(scope="package")
def operator(start_e2e_operator):
    return start_e2e_operator()


def running_operator(start_e2e_operator):
    """The operator running now (a test may have restarted it); one is started if none runs.
    Standalone operators do not peer: two at once would both reconcile."""
    live = start_e2e_operator.live
    if not live or live[0].proc.poll() is not None:
        return start_e2e_operator()
    return live[0]


@pytest.fixture
def live_operator(start_e2e_operator):
    return running_operator(start_e2e_operator)
