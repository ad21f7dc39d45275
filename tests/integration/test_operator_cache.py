"""The operator's watch-fed caches on the real API server: what changed while the operator was
down is in the fresh list it starts from, and objects created after it started are found through
the indexes (model line -> releases and deployments, namespace -> Tenant)."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests.integration.helpers import wait_for
from tugboat.api.base import API_VERSION

NS, LINE = "cache-team", "cache-line"


def apply(cluster, doc: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def agent(name: str, release: str) -> dict:
    return {"apiVersion": API_VERSION, "kind": "AgentDeployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"modelLine": LINE, "replicas": 1, "release": release}}


def status_of(kube, name: str) -> dict:
    return (kube.get_or_none(API_VERSION, "AgentDeployment", name, NS) or {}).get("status") or {}


def ready_reason(kube, name: str) -> str | None:
    return next((c["reason"] for c in status_of(kube, name).get("conditions", []) if c["type"] == "Ready"),
                None)


@pytest.fixture(scope="module")
def tenant(cluster):
    apply(cluster, {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": NS},
                    "spec": {"namespaces": [NS], "costCenter": "cc-cache", "allowedModelLines": [LINE]}})
    return NS


def verified_release(cluster, name: str) -> None:
    """A release (in the deployments' own namespace) whose status says it was verified; Exported
    and Signed too, so the running release controller takes it as finished work and keeps it."""
    apply(cluster, {"apiVersion": API_VERSION, "kind": "ModelRelease",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {"modelLine": LINE, "source": {"trainingRun": f"{name}-run"}}})
    def cond(type_: str) -> dict:
        return {"type": type_, "status": "True", "reason": type_, "message": "test",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}
    status = {"phase": "Ready", "artifactUri": f"file:///var/lib/tugboat/artifacts/{name}",
              "manifestDigest": "d" * 64, "conditions": [cond("Exported"), cond("Signed"), cond("Verified")]}

    def kept() -> bool:
        def ours() -> bool:
            got = json.loads(cluster.kubectl("get", "modelrelease", name, "-n", NS, "-o", "json").stdout)
            return cond("Verified") in (got.get("status") or {}).get("conditions", [])
        if not ours():
            cluster.kubectl("patch", "modelrelease", name, "-n", NS, "--subresource=status", "--type=merge",
                            "-p", json.dumps({"status": status}))
            return False
        time.sleep(1)
        return ours()
    wait_for(kept, timeout=30, interval=0.2, what=f"{name}'s verified status")


def started(start_operator, kube):
    op = start_operator("--priority", "1000")
    op.wait_for_log("caches synced", timeout=90)
    op.wait_for_log("tugboat operator: priority 1000")
    # The Tenant, applied before any operator ran, gets its namespace from this one's first pass.
    wait_for(lambda: kube.get_or_none("v1", "Namespace", NS), timeout=60, what=f"namespace {NS}")
    return op


def test_a_change_made_while_the_operator_was_down_is_reconciled_after_it_starts(
        cluster, kube, tenant, start_operator):
    op = started(start_operator, kube)
    apply(cluster, agent("early", "cache-r0"))
    wait_for(lambda: "cache-r0" in status_of(kube, "early").get("message", ""), what="waiting for cache-r0")
    op.stop()
    apply(cluster, agent("early", "cache-r1"))  # while nobody watches
    started(start_operator, kube)
    wait_for(lambda: "cache-r1" in status_of(kube, "early").get("message", ""), timeout=60,
             what="the change made while the operator was down, reconciled from the fresh list")


def test_objects_created_after_start_are_found_through_the_indexes(cluster, kube, tenant, start_operator):
    # The operator of the test above runs on: its caches only learn of these objects by watching.
    apply(cluster, agent("late", "cache-r1"))
    wait_for(lambda: ready_reason(kube, "late") == "NoVerifiedRelease", what="late waiting for its release")
    verified_release(cluster, "cache-r1")
    # The release event reaches both deployments of its line (line index), and each one's
    # reconcile finds the release among its line's (line index) past the "no verified release" wait.
    for name in ("late", "early"):
        wait_for(lambda n=name: ready_reason(kube, n) not in (None, "NoVerifiedRelease"), timeout=60,
                 what=f"{name} past NoVerifiedRelease once cache-r1 is verified")
    # The Tenant found through the namespace index counts the deployments created in its namespace.
    wait_for(lambda: ((kube.get(API_VERSION, "Tenant", NS).get("status") or {}).get("agentDeployments")) == 2,
             timeout=60, what="the Tenant counting both deployments")
