"""HA: a second replica stays passive while the first is alive, and takes over when it dies.

Runs on its own cluster: the session's operator would otherwise be a third peer.
"""

from __future__ import annotations

import pytest
import yaml

from tests.integration.conftest import operator_starter, running_cluster
from tests.integration.helpers import condition_is, wait_for
from tugboat.dev.tools import repo_root
from tugboat.kube.client import Kube


@pytest.fixture(scope="module")
def ha_cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory, "ha")


@pytest.fixture(scope="module")
def start(ha_cluster, tmp_path_factory):
    yield from operator_starter(ha_cluster, tmp_path_factory)


def _tenant(name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "tugboat.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
        "spec": {"namespaces": [name], "costCenter": "cc-peer"}})


def test_standby_is_passive_then_takes_over(ha_cluster, start):
    kube = Kube.connect(str(ha_cluster.kubeconfig))
    leader = start("--priority", "500", "--peering-lifetime", "10")
    leader.wait_for_log("tugboat operator: priority 500")
    standby = start("--priority", "100", "--peering-lifetime", "10")
    standby.wait_for_log("Initial authentication has finished")

    ha_cluster.kubectl("apply", "-f", "-", input=_tenant("peer-one"))
    wait_for(condition_is(kube, "Tenant", "peer-one", None, "Valid", "True"), what="leader reconciles")
    leader.wait_for_log("Tenant -/peer-one: Active")
    assert "peer-one" not in standby.output(), "the standby must stay passive"

    leader.proc.kill()  # a crash: no goodbye, so the leader's claim has to expire
    leader.proc.wait()
    standby.wait_for_log("Resuming operations", timeout=120)
    ha_cluster.kubectl("apply", "-f", "-", input=_tenant("peer-two"))
    wait_for(condition_is(kube, "Tenant", "peer-two", None, "Valid", "True"), timeout=90,
             what="standby reconciles after takeover")
    standby.wait_for_log("Tenant -/peer-two: Active")


def test_a_replica_paused_by_a_higher_peer_drops_its_queued_wake_ups(ha_cluster, start):
    """kopf's pause stops watch events; wake-ups the replica queued while active must not write."""
    kube = Kube.connect(str(ha_cluster.kubeconfig))
    first = start("--priority", "200", "--peering-lifetime", "10")
    first.wait_for_log("tugboat operator: priority 200")
    ha_cluster.kubectl("create", "namespace", "ml-platform")
    # A running TrainingRun polls itself every few seconds (MLflow sends no events): its RayJob's
    # status, written here as KubeRay would, says it runs.
    run = yaml.safe_load((repo_root() / "examples" / "10-trainingrun.yaml").read_text())
    run["metadata"]["name"] = "polling"
    ha_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(run))
    def run_status() -> dict:
        return kube.get("tugboat.dev/v1alpha1", "TrainingRun", "polling", "ml-platform").get("status") or {}
    job = wait_for(lambda: run_status().get("rayJobName"), timeout=60, what="first replica reconciles")
    ha_cluster.kubectl("patch", "rayjob", job, "-n", "ml-platform", "--subresource=status", "--type=merge",
                       "-p", '{"status": {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}}')
    wait_for(lambda: run_status().get("phase") == "Running", timeout=60, what="the run running")
    higher = start("--priority", "900", "--peering-lifetime", "10")
    higher.wait_for_log("tugboat operator: priority 900")
    first.wait_for_log("standby: paused in favour of", timeout=60)
    assert "Traceback" not in first.output()
