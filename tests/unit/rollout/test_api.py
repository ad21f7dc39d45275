"""The rollout API: what the schema refuses, the defaults it publishes, where traffic lives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tugboat.api.agent_deployment import AgentDeploymentSpec
from tugboat.api.crd import build_crd
from tugboat.api.kinds import MODEL_RELEASE
from tugboat.api.model_release import AnalysisCheck, Direction, ModelReleaseSpec, RolloutSpec
from tugboat.api.tenant import RolloutPlacement

CHECK = {"name": "c", "metric": "ErrorRate", "threshold": 0.1}


@pytest.mark.parametrize(("rollout", "says"), [
    ({"steps": [{"weight": 150}]}, "less than or equal to 100"),
    ({"steps": [{"weight": -1}]}, "greater than or equal to 0"),
    ({"steps": []}, "at least 1 item"),
    ({"steps": [{"weight": 10, "pause": "30s"}]}, "pause"),
    ({"steps": [{"weight": 10, "pause": {"duration": "soon"}}]}, "pattern"),
    ({"analysis": {"checks": []}}, "at least 1 item"),
    ({"analysis": {"checks": [CHECK, CHECK]}}, "check names must be unique"),
    ({"analysis": {"checks": [{"name": "q", "metric": "Custom", "threshold": 1, "direction": "AtMost"}]}},
     "metric Custom requires query"),
    ({"analysis": {"checks": [{"name": "q", "metric": "Custom", "threshold": 1, "query": "up"}]}},
     "metric Custom requires direction"),
    ({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "values must be set"),
    ({"httpRoute": "r"}, "Extra inputs"),  # moved to AgentDeployment spec.traffic
])
def test_rejected(rollout, says):
    with pytest.raises(ValidationError, match=says):
        RolloutSpec.model_validate(rollout)


def test_pause_without_duration_waits_for_a_person():
    step = RolloutSpec.model_validate({"steps": [{"weight": 20, "pause": {}}]}).steps[0]
    assert step.pause is not None and step.pause.duration is None and step.analysis


def test_directions_explicit_with_natural_defaults():
    assert AnalysisCheck(name="s", metric="SuccessScore", threshold=0.8).pass_when == Direction.AT_LEAST
    assert AnalysisCheck(name="e", metric="RouterEntropy", threshold=1.1).pass_when == Direction.AT_LEAST
    assert AnalysisCheck(name="i", metric="RouterImbalance", threshold=1.6).pass_when == Direction.AT_MOST
    flipped = AnalysisCheck(name="l", metric="LatencyP95", threshold=1, direction="AtLeast")
    assert flipped.pass_when == Direction.AT_LEAST


def test_default_checks_cover_the_builtins():
    metrics = {c.metric for c in RolloutSpec().analysis.checks}
    assert metrics == {"ErrorRate", "LatencyP95", "LatencyPerToken", "SuccessScore", "RouterImbalance",
                       "RouterEntropy"}


def test_tenant_cap_bounds():
    assert RolloutPlacement().max_canary_weight == 100
    with pytest.raises(ValidationError):
        RolloutPlacement(max_canary_weight=101)


def test_traffic_is_per_agent_deployment():
    spec = AgentDeploymentSpec.model_validate(
        {"modelLine": "m", "traffic": {"gatewayRef": {"name": "gw", "namespace": "infra"}, "httpRoute": "r"}})
    assert spec.traffic.gateway_ref.namespace == "infra" and spec.traffic.http_route == "r"
    assert AgentDeploymentSpec(model_line="m").traffic.gateway_ref is None  # replica ratio


def _rollout_schema():
    spec = build_crd(MODEL_RELEASE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["rollout"]["properties"]


def test_crd_schema_shapes():
    rollout = _rollout_schema()
    step = rollout["steps"]["items"]["properties"]
    assert step["weight"]["maximum"] == 100 and step["pause"]["type"] == "object"
    assert rollout["steps"]["minItems"] == 1
    checks = rollout["analysis"]["properties"]["checks"]
    assert checks["x-kubernetes-list-type"] == "map" and checks["x-kubernetes-list-map-keys"] == ["name"]
    rules = [r["rule"] for r in checks["items"]["x-kubernetes-validations"]]
    assert "self.metric != 'Custom' || has(self.query)" in rules


def test_example_release_parses():
    import yaml

    from tugboat.dev.tools import repo_root

    doc = yaml.safe_load((repo_root() / "examples" / "20-modelrelease.yaml").read_text())
    assert [s.weight for s in ModelReleaseSpec.model_validate(doc["spec"]).rollout.steps] == [10, 50, 100]
