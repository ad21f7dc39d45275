"""AgentDeployment (under its Tenant): every spec pair the API accepts yields serving pods whose
flags and guardrails file the serving runtime accepts at startup; every other is refused clearly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.integration.trust import fresh_public_pem
from tugboat.api.agent_deployment import AgentDeploymentSpec, AgentDeploymentStatus
from tugboat.api.crd import openapi_schema
from tugboat.api.model_release import TargetPlan, TargetState
from tugboat.api.tenant import TenantSpec
from tugboat.builders.agent_deployment import ServingConfig
from tugboat.conditions import find
from tugboat.reconcile.agent_deployment import Observed, ReleaseView, decide
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.serving_graph import PublishedGraph
from tugboat.reconcile.tenancy import TenantView

from .schema_cases import Case, materialize, rule_messages, walk
from .workloads import invocation, mount, parse

SCHEMA, TENANT_SCHEMA = openapi_schema(AgentDeploymentSpec), openapi_schema(TenantSpec)
# Every detector's settings present, so each kind the enum lists has what it needs.
BASE = materialize(SCHEMA, {"modelLine": "moe", "guardrails": {
    "promptFilter": {"denyPatterns": [r"(?i)ignore previous"]}, "tools": {"allowed": ["search"]},
    "successDetector": {"pattern": r"\d+", "schema": '{"type": "object"}', "reference": "42"}}})
TENANT_BASE = materialize(TENANT_SCHEMA, {"namespaces": ["team-a"], "costCenter": "cc-1",
                                          "allowedModelLines": ["moe"], "quota": {"gpus": 16_000}})
AGENT_CASES, UNREACHED = walk(SCHEMA, BASE)
TENANT_CASES, TENANT_UNREACHED = walk(TENANT_SCHEMA, TENANT_BASE)
CASES = [("agent", c) for c in AGENT_CASES] + [("tenant", c) for c in TENANT_CASES]
META = Meta("agent", "team-a", "uid-agd", 1)
CONFIG = ServingConfig(image="img", pool_label="tugboat.dev/pool", artifact_root="/art",
                       artifact_pvc="artifacts", gateway_namespace="gw", monitoring_namespace="mon")
GRAPHS = tuple(PublishedGraph(g, True) for g in ("fp32", "fp16", "int8"))
RELEASE = ReleaseView("v1", "ml", "moe", True, "Ready", "file:///art/v1", "d" * 64,
                      "2026-01-01T00:00:00Z", GRAPHS)
# A rollout in progress: v1 stable, v2 canary at 10%, so both tracks' pods are built.
CANARY_PLAN = TargetPlan(namespace="team-a", name="agent", tenant="team-a", wave=0, stable_release="v1",
                         state=TargetState.PROGRESSING, weight=10)
CANARY = ReleaseView("v2", "ml", "moe", True, "Progressing", "file:///art/v2", "e" * 64,
                     "2026-02-01T00:00:00Z", GRAPHS, plan=CANARY_PLAN, has_rollout=True)
PEM = fresh_public_pem()


def test_every_enum_value_and_bound_is_a_case():
    assert UNREACHED == [] and TENANT_UNREACHED == []
    ids = {c.id for c in AGENT_CASES} | {c.id for c in TENANT_CASES}
    assert {"guardrails.fallback.mode='SimpleModel'", "guardrails.successDetector.kind='JsonSchema'",
            "graph.preferred='int8'", "permissionLevel='ReadOnly'",
            "tokenBudget.windowSeconds=2592000"} <= ids


def _validated(model, schema: dict, raw: dict) -> bool:
    try:
        model.model_validate(raw)
    except ValidationError as exc:  # an in-range value only a cross-field rule may refuse
        assert any(m in str(exc) for m in rule_messages(schema)), str(exc)
        return False
    return True


@pytest.mark.parametrize(("side", "case"), CASES, ids=lambda v: v.id if isinstance(v, Case) else v)
def test_accepted_specs_yield_pods_the_serving_runtime_starts_with(side, case, tmp_path, now):
    raw, tenant = (case.apply(BASE), TENANT_BASE) if side == "agent" else (BASE, case.apply(TENANT_BASE))
    if not (_validated(AgentDeploymentSpec, SCHEMA, raw) and _validated(TenantSpec, TENANT_SCHEMA, tenant)):
        return
    tenant_view = TenantView("team-a", TenantSpec.model_validate(tenant))
    observed = Observed(META, raw, AgentDeploymentStatus(stable_release="v1"), tenant_view, (RELEASE, CANARY),
                        PEM, config=CONFIG)
    out = decide(observed, now)
    valid = find(out.status.conditions, "Valid")
    if valid.status == "False":  # refused by the operator: said where a person looks
        assert valid.message.startswith("spec."), valid.message
        assert out.children == ()
        return
    config_maps = {c["metadata"]["name"]: c for c in out.children if c["kind"] == "ConfigMap"}
    deployments = {c["metadata"]["labels"]["tugboat.dev/track"]: c
                   for c in out.children if c["kind"] == "Deployment"}
    assert set(deployments) == {"stable", "canary"}
    for track, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        settings, guardrails = parse(mount(invocation(container), pod, container, config_maps, tmp_path))
        assert (settings.track, settings.graph) == (track, raw["graph"]["preferred"])
        assert guardrails.fallback.mode == raw["guardrails"]["fallback"]["mode"]
        assert guardrails.token_budget.tokens_per_window == tenant["tokenBudget"]["tokensPerWindow"]


def test_a_case_reaches_the_runtime_with_its_value(tmp_path, now):
    """The harness itself: a changed tenant budget shows in what the runtime parsed."""
    case = next(c for c in TENANT_CASES if c.id == "tokenBudget.tokensPerWindow=1")
    tenant = TenantSpec.model_validate(case.apply(TENANT_BASE))
    out = decide(Observed(META, BASE, AgentDeploymentStatus(), TenantView("team-a", tenant), (RELEASE,), PEM,
                          config=CONFIG), now)
    pod = next(c for c in out.children if c["kind"] == "Deployment")["spec"]["template"]["spec"]
    config_maps = {c["metadata"]["name"]: c for c in out.children if c["kind"] == "ConfigMap"}
    _, guardrails = parse(mount(invocation(pod["containers"][0]), pod, pod["containers"][0], config_maps,
                                tmp_path))
    assert guardrails.token_budget.tokens_per_window == 1


def _with_guardrails(**guardrails) -> dict:
    return {**BASE, "guardrails": {**BASE["guardrails"], **guardrails}}


# Content the structural schema cannot judge (the runtime's regular expressions) but the runtime does.
@pytest.mark.parametrize(("raw", "field", "reason"), [
    (_with_guardrails(promptFilter={"denyPatterns": ["ok", "(unclosed"], "maxPromptChars": 10}),
     "spec.guardrails.promptFilter.denyPatterns[1]", "InvalidDenyPattern"),
    (_with_guardrails(successDetector={"kind": "Regex", "pattern": "[a-"}),
     "spec.guardrails.successDetector.pattern", "InvalidSpec"),
])
def test_what_the_runtime_would_refuse_is_refused_by_the_operator(raw, field, reason, now):
    tenant = TenantView("team-a", TenantSpec.model_validate(TENANT_BASE))
    out = decide(Observed(META, raw, AgentDeploymentStatus(), tenant, (RELEASE,), PEM, config=CONFIG), now)
    valid = find(out.status.conditions, "Valid")
    assert (valid.status, valid.reason) == ("False", reason) and valid.message.startswith(field)
    assert out.children == ()
