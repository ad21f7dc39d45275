"""Pure decisions: valid specs are accepted, semantic errors stop with reason and message."""

from __future__ import annotations

import pytest

from tugboat.api.agent_deployment import AgentDeploymentStatus
from tugboat.api.model_release import ModelReleaseStatus
from tugboat.api.tenant import TenantSpec, TenantStatus
from tugboat.api.training_run import TrainingRunStatus
from tugboat.conditions import find
from tugboat.reconcile import agent_deployment, model_release, tenant, training_run
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.tenancy import TenantView

SHA = "a" * 64


def meta(ns="ml", gen=1):
    return Meta(name="x", namespace=ns, uid="u", generation=gen)


def team(**kw) -> TenantView:
    spec = {"namespaces": ["team-a"], "costCenter": "cc", "allowedModelLines": ["moe"], **kw}
    return TenantView("team-a", TenantSpec.model_validate(spec))


def tr_spec(**kw):
    return {"data": {"uri": "builtin://arithmetic", "sha256": SHA}, **kw}


POOL = training_run.PoolView(nodes=2, max_gpus_per_node=2, total_gpus=4)
CFG = training_run.Config("tugboat.dev/pool", "cpu", "img", "2.60.0", "http://mlflow", "/art")


def tr_obs(meta_, spec, status, tenant_view):
    return training_run.Observed(meta_, spec, status, tenant_view, pool=POOL, config=CFG)


def test_training_run_valid(now):
    out = training_run.decide(tr_obs(meta(gen=4), tr_spec(), TrainingRunStatus(), None), now)
    assert find(out.status.conditions, "Valid").status == "True"
    assert out.status.observed_generation == 4
    assert out.status.phase == "Starting"
    assert [e.reason for e in out.events] == ["Starting"]


def test_no_event_without_phase_change(now):
    first = training_run.decide(tr_obs(meta(), tr_spec(), TrainingRunStatus(), None), now)
    again = training_run.decide(tr_obs(meta(), tr_spec(), first.status, None), now)
    assert again.events == ()
    assert again.status == first.status


def test_training_run_unknown_tenant(now):
    out = training_run.decide(
        tr_obs(meta(), tr_spec(tenant="ghost"), TrainingRunStatus(), None), now)
    valid = find(out.status.conditions, "Valid")
    assert (valid.status, valid.reason) == ("False", "TenantNotFound")
    assert "spec.tenant" in valid.message
    assert out.status.phase == "Invalid"
    assert out.events[0].type == "Warning"


def test_training_run_pool_not_allowed_for_tenant(now):
    obs = tr_obs(meta("team-a"), tr_spec(tenant="team-a"), TrainingRunStatus(), team())
    valid = find(training_run.decide(obs, now).status.conditions, "Valid")
    assert valid.reason == "NodePoolNotAllowed"
    assert "spec.resources.nodePool" in valid.message


def test_pydantic_catches_what_schema_missed(now):
    bad = tr_spec(model={"topK": 9, "experts": 8})
    out = training_run.decide(tr_obs(meta(), bad, TrainingRunStatus(), None), now)
    valid = find(out.status.conditions, "Valid")
    assert valid.reason == "InvalidSpec"


@pytest.mark.parametrize(("tenant_view", "spec", "reason"), [
    (None, {"modelLine": "moe"}, "NamespaceNotInTenant"),
    (team(), {"modelLine": "gpt"}, "ModelLineNotAllowed"),
    (team(), {"modelLine": "moe", "nodePool": "gpu"}, "NodePoolNotAllowed"),
    (team(), {"modelLine": "moe"}, "SpecValid"),
])
def test_agent_deployment_checks(now, tenant_view, spec, reason):
    obs = agent_deployment.Observed(meta("team-a"), spec, AgentDeploymentStatus(), tenant_view)
    assert find(agent_deployment.decide(obs, now).status.conditions, "Valid").reason == reason


@pytest.mark.parametrize("signing", [
    {"method": "SigstoreKeyless"},
    {"method": "SigstoreKeyless", "keySecretRef": {"name": "key"}},  # not signed with the key instead
])
def test_model_release_keyless_signing_is_refused(now, signing):
    spec = {"modelLine": "moe", "source": {"trainingRun": "t"}, "signing": signing}
    out = model_release.decide(model_release.Observed(meta(), spec, ModelReleaseStatus()), now)
    valid = find(out.status.conditions, "Valid")
    assert (valid.status, valid.reason) == ("False", "InvalidSpec") and "SigstoreKeyless" in valid.message
    assert out.children == ()


def test_tenant_namespace_claimed(now):
    spec = {"namespaces": ["team-a", "team-b"], "costCenter": "cc"}
    out = tenant.decide(tenant.Observed(meta(None), spec, TenantStatus(), {"team-b": "older"}), now)
    valid = find(out.status.conditions, "Valid")
    assert valid.reason == "NamespaceClaimed"
    assert "team-b (tenant older)" in valid.message
    free = tenant.decide(tenant.Observed(meta(None), spec, TenantStatus(), {}), now)
    assert free.status.phase == "Active"
    assert free.status.namespaces == ["team-a", "team-b"]
