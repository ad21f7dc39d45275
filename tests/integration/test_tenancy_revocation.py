"""Revoking a right stops its use, on the real API server: an AgentDeployment serving a verified
release loses its Deployment (and HPA) when its Tenant stops allowing the model line, or no longer
lists its namespace, with phase Revoked, Valid=False naming why and a Warning event; given back,
it serves again. Reconciled in-process one pass at a time (no pods needed: the Deployment is the
serving)."""

from __future__ import annotations

import pytest

from tests.integration.tenancy_waits import quota_counted
from tests.integration.test_release_rollout_drive import _now
from tests.integration.trust import TRUST_CONFIGMAP, create_trust_config_map
from tugboat.api.base import API_VERSION
from tugboat.api.kinds import AGENT_DEPLOYMENT, TENANT
from tugboat.api.model_release import ModelReleaseStatus
from tugboat.builders.agent_deployment import serving_name
from tugboat.controllers.reconcilers import reconcile
from tugboat.controllers.settings import Settings
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import set_conditions

PLATFORM, NS, LINE, AGENT = "ml-platform", "revoke-team", "moe-revoke", "agent"
SETTINGS = Settings(release_namespaces=(PLATFORM,))
pytestmark = pytest.mark.timeout(120)


def _tenant(kube, lines: list[str], namespaces: list[str]) -> None:
    kube.apply({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": NS},
                "spec": {"namespaces": namespaces, "costCenter": "cc-rev", "allowedModelLines": lines,
                         "quota": {"cpu": "8", "memory": "32Gi"}}})
    reconcile(kube, TENANT, NS, None, SETTINGS)


def _valid(status) -> tuple[str, str, str]:
    c = next(c for c in status.conditions if c.type == "Valid")
    return c.status, c.reason, c.message


@pytest.fixture(scope="module")
def serving(cluster, kube):
    for ns in (PLATFORM, NS):
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    if kube.get_or_none("v1", "ConfigMap", TRUST_CONFIGMAP, SETTINGS.system_namespace) is None:
        create_trust_config_map(cluster)
    _tenant(kube, [LINE], [NS])
    quota_counted(kube, NS)
    _ready(kube, "moe-revoke-v1", PLATFORM)
    kube.apply({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                "metadata": {"name": AGENT, "namespace": NS},
                "spec": {"modelLine": LINE,
                         "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 2}}})
    out = reconcile(kube, AGENT_DEPLOYMENT, AGENT, NS, SETTINGS)
    assert out.status.release == "moe-revoke-v1", out.status.message
    assert kube.get_or_none("apps/v1", "Deployment", serving_name(AGENT), NS) is not None
    return out


def _ready(kube, name: str, namespace: str) -> None:
    kube.apply({"apiVersion": API_VERSION, "kind": "ModelRelease",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"modelLine": LINE, "source": {"trainingRun": "moe"}}})
    gen = kube.get(API_VERSION, "ModelRelease", name, namespace)["metadata"]["generation"]
    ready = set_conditions(ModelReleaseStatus(phase="Ready", artifact_uri=f"file:///art/{name}",
                                              manifest_digest="d" * 64),
                           _now(), gen, *((t, True, "Done", "set by the test") for t in mr.STAGES))
    kube.patch_status(API_VERSION, "ModelRelease", name, namespace,
                      ready.model_dump(by_alias=True, mode="json"))


def test_a_release_from_another_tenants_namespace_never_serves_here(kube, serving):
    # Another tenant (allowed the same line) verifies a newer release in its own namespace.
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "revoke-other"}})
    _ready(kube, "moe-revoke-v9", "revoke-other")
    kube.apply({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                "metadata": {"name": "fresh", "namespace": NS}, "spec": {"modelLine": LINE}})
    out = reconcile(kube, AGENT_DEPLOYMENT, "fresh", NS, SETTINGS)
    assert out.status.release == "moe-revoke-v1", out.status.message
    kube.delete(API_VERSION, "AgentDeployment", "fresh", NS)


@pytest.mark.parametrize(("lines", "namespaces", "reason"), [
    (["another-line"], [NS], "ModelLineNotAllowed"),
    ([LINE], ["revoke-elsewhere"], "NamespaceNotInTenant")])
def test_a_revoked_right_stops_the_serving_and_giving_it_back_serves_again(kube, serving, lines,
                                                                          namespaces, reason):
    _tenant(kube, lines, namespaces)
    out = reconcile(kube, AGENT_DEPLOYMENT, AGENT, NS, SETTINGS)
    status, got, message = _valid(out.status)
    assert (status, got) == ("False", reason)
    assert out.status.phase == "Revoked" and out.status.endpoint is None
    assert kube.get_or_none("apps/v1", "Deployment", serving_name(AGENT), NS) is None
    assert kube.get_or_none("autoscaling/v2", "HorizontalPodAutoscaler", serving_name(AGENT), NS) is None
    events = kube.list("v1", "Event", NS)
    assert any(e.get("reason") == reason and e.get("type") == "Warning"
               and "-> Revoked: serving stopped: " in (e.get("message") or "") for e in events), message
    _tenant(kube, [LINE], [NS])
    quota_counted(kube, NS)
    out = reconcile(kube, AGENT_DEPLOYMENT, AGENT, NS, SETTINGS)
    assert _valid(out.status)[:2] == ("True", "SpecValid") and out.status.release == "moe-revoke-v1"
    assert kube.get_or_none("apps/v1", "Deployment", serving_name(AGENT), NS) is not None
