"""Bad input on the traffic and target side of a rollout, on the real API server, reconciled
in-process one pass at a time: a selector that matches no AgentDeployment, a gatewayRef naming a
Gateway that does not exist, an httpRoute name already taken by someone else's route. Each is
Valid=False naming it, nothing of anyone else's is written, and fixing the input heals it."""

from __future__ import annotations

import pytest

from tests.integration.test_release_rollout_drive import _now
from tugboat.api.base import API_VERSION
from tugboat.api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE, TENANT
from tugboat.api.model_release import ModelReleaseStatus
from tugboat.builders.agent_deployment import GATEWAY_API
from tugboat.controllers.reconcilers import reconcile
from tugboat.controllers.settings import Settings
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import set_conditions

PLATFORM, TEAM, LINE = "ml-platform", "bad-input", "moe-bad-input"
SETTINGS = Settings(release_namespaces=(PLATFORM,))
pytestmark = pytest.mark.timeout(120)


def cond(obj_status, type_: str) -> tuple[str, str, str]:
    c = next(c for c in obj_status.conditions if c.type == type_)
    return c.status, c.reason, c.message


@pytest.fixture(scope="module")
def team(kube):
    for ns in (PLATFORM, TEAM):
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.apply({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": TEAM},
                "spec": {"namespaces": [TEAM], "costCenter": "cc-bad", "allowedModelLines": [LINE],
                         "quota": {"cpu": "8", "memory": "32Gi"}}})
    reconcile(kube, TENANT, TEAM, None, SETTINGS)
    return TEAM


def _agent(kube, name: str, labels: dict | None = None, traffic: dict | None = None) -> None:
    kube.apply({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                "metadata": {"name": name, "namespace": TEAM, "labels": labels or {}},
                "spec": {"modelLine": LINE, **({"traffic": traffic} if traffic else {})}})


def _ready_release(kube, name: str, selector: dict) -> None:
    kube.apply({"apiVersion": API_VERSION, "kind": "ModelRelease",
                "metadata": {"name": name, "namespace": PLATFORM},
                "spec": {"modelLine": LINE, "source": {"trainingRun": "moe"},
                         "rollout": {"steps": [{"weight": 20}], "selector": selector}}})
    gen = kube.get(API_VERSION, "ModelRelease", name, PLATFORM)["metadata"]["generation"]
    ready = set_conditions(ModelReleaseStatus(artifact_uri="file:///nowhere", manifest_digest="d" * 64),
                           _now(), gen, *((t, True, "Done", "set by the test") for t in mr.STAGES))
    kube.patch_status(API_VERSION, "ModelRelease", name, PLATFORM,
                      ready.model_dump(by_alias=True, mode="json"))


def test_a_selector_that_matches_nothing_is_invalid_naming_it_until_a_deployment_matches(kube, team):
    _agent(kube, "sel-agent", labels={"tier": "silver"})
    kube.patch_status(API_VERSION, "AgentDeployment", "sel-agent", TEAM, {"release": "moe-bad-input-v1"})
    _ready_release(kube, "moe-bad-input-v2", {"matchLabels": {"tier": "gold"}})
    out = reconcile(kube, MODEL_RELEASE, "moe-bad-input-v2", PLATFORM, SETTINGS)
    status, reason, message = cond(out.status, "Valid")
    assert (status, reason) == ("False", "SelectorMatchesNothing")
    assert "spec.rollout.selector tier=gold matches no AgentDeployment of model line moe-bad-input" in message
    assert f"{TEAM}/sel-agent does not match spec.rollout.selector" in message
    stored = kube.get(API_VERSION, "ModelRelease", "moe-bad-input-v2", PLATFORM)["status"]
    assert stored["phase"] == "Ready"  # verified work is kept; nothing rolled out
    # The label is fixed on the deployment: the same release is valid and starts its rollout.
    _agent(kube, "sel-agent", labels={"tier": "gold"})
    out = reconcile(kube, MODEL_RELEASE, "moe-bad-input-v2", PLATFORM, SETTINGS)
    assert cond(out.status, "Valid")[:2] == ("True", "SpecValid")
    assert out.status.phase == "Progressing"
    assert [(t.namespace, t.name) for t in out.status.rollout.targets] == [(TEAM, "sel-agent")]


def test_a_gateway_ref_to_a_missing_gateway_is_invalid_until_the_gateway_exists(kube, team):
    assert kube.serves(GATEWAY_API, "HTTPRoute") and not kube.serves("example.invalid/v1", "Nothing")
    _agent(kube, "gw-agent", traffic={"gatewayRef": {"name": "edge", "namespace": TEAM}})
    out = reconcile(kube, AGENT_DEPLOYMENT, "gw-agent", TEAM, SETTINGS)
    status, reason, message = cond(out.status, "Valid")
    assert (status, reason) == ("False", "GatewayNotFound")
    assert f"Gateway {TEAM}/edge does not exist" in message
    kube.apply({"apiVersion": GATEWAY_API, "kind": "Gateway", "metadata": {"name": "edge", "namespace": TEAM},
                "spec": {"gatewayClassName": "tugboat-dev",
                         "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})
    out = reconcile(kube, AGENT_DEPLOYMENT, "gw-agent", TEAM, SETTINGS)
    assert cond(out.status, "Valid")[:2] == ("True", "SpecValid")
    assert out.status.phase == "Waiting"  # the line has no verified release yet: nothing to route


def test_a_route_name_taken_by_someone_elses_route_is_never_written(kube, team):
    kube.apply({"apiVersion": GATEWAY_API, "kind": "Gateway", "metadata": {"name": "edge", "namespace": TEAM},
                "spec": {"gatewayClassName": "tugboat-dev",
                         "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})
    theirs = {"apiVersion": GATEWAY_API, "kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": TEAM},
              "spec": {"parentRefs": [{"name": "edge"}], "hostnames": ["shop.example.test"],
                       "rules": [{"backendRefs": [{"name": "shop", "port": 80}]}]}}
    kube.apply(theirs, force=False)
    _agent(kube, "route-agent",
           traffic={"gatewayRef": {"name": "edge", "namespace": TEAM}, "httpRoute": "shop"})
    out = reconcile(kube, AGENT_DEPLOYMENT, "route-agent", TEAM, SETTINGS)
    status, reason, message = cond(out.status, "Valid")
    assert (status, reason) == ("False", "HTTPRouteNotOwned")
    assert f"HTTPRoute {TEAM}/shop already exists and belongs to no owner (made by hand)" in message
    route = kube.get(GATEWAY_API, "HTTPRoute", "shop", TEAM)
    assert route["spec"]["hostnames"] == ["shop.example.test"]
    assert not route["metadata"].get("ownerReferences")
    # Their route goes: ours may take the name (and carries our owner reference).
    kube.delete(GATEWAY_API, "HTTPRoute", "shop", TEAM)
    out = reconcile(kube, AGENT_DEPLOYMENT, "route-agent", TEAM, SETTINGS)
    assert cond(out.status, "Valid")[:2] == ("True", "SpecValid")
