"""AgentDeployment decide: release choice, waiting without a verified release or key, readiness."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.integration.trust import fresh_public_pem
from tugboat.api.agent_deployment import AgentDeploymentSpec, AgentDeploymentStatus
from tugboat.api.tenant import TenantSpec
from tugboat.builders.agent_deployment import ServingConfig, serving_name
from tugboat.reconcile.agent_deployment import (
    DeploymentView,
    Observed,
    ReleaseView,
    decide,
    summarize_deployment,
    summarize_release,
)
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.release_tracks import tracks_for
from tugboat.reconcile.tenancy import TenantView

PEM = fresh_public_pem()
META = Meta("arith-agent", "team-a", "uid-agd", 2)
CONFIG = ServingConfig(image="img", pool_label="tugboat.dev/pool", artifact_root="/art",
                       artifact_pvc=None, gateway_namespace="gw", monitoring_namespace="mon")
TENANT = TenantView("team-a", TenantSpec.model_validate({
    "namespaces": ["team-a"], "costCenter": "cc", "allowedModelLines": ["moe-arith"],
    "quota": {"gpus": 4}}))
SPEC = {"modelLine": "moe-arith", "replicas": 2}
DIGEST = "d" * 64


def release(name="v1", created="2026-01-01T00:00:00Z", verified=True, phase="Ready",
            line="moe-arith", uri=None) -> ReleaseView:
    return ReleaseView(name, "ml", line, verified, phase, uri or f"file:///art/{name}", DIGEST, created)


def observed(spec=None, releases=None, **kw) -> Observed:
    releases = (release(),) if releases is None else releases
    base = Observed(META, spec or SPEC, AgentDeploymentStatus(), TENANT, tuple(releases), PEM,
                    None, False, CONFIG)
    return replace(base, **kw)


def deployment(ready=2, replicas=2, rel="v1", failure=None, current=True) -> DeploymentView:
    return DeploymentView(replicas, ready, replicas, current, rel, DIGEST, failure)


def conds(status) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def pick(releases, **spec):
    tracks = tracks_for(AgentDeploymentSpec.model_validate(SPEC | spec), TENANT, tuple(releases), None)
    return (tracks.stable.name, "") if tracks.stable else (None, tracks.message)


def test_without_rollouts_or_anything_stable_the_newest_ready_or_promoted_verified_release_wins():
    releases = [release("v1", "2026-01-01T00:00:00Z"),
                release("v2", "2026-02-01T00:00:00Z", phase="Promoted"),
                release("v3", "2026-03-01T00:00:00Z", phase="RollingOut"),
                release("v4", "2026-04-01T00:00:00Z", verified=False),
                release("x9", "2026-05-01T00:00:00Z", line="other")]
    assert pick(releases) == ("v2", "")


def test_pinned_release_is_served_even_if_older_but_only_when_verified():
    releases = [release("v1"), release("v2", "2026-02-01T00:00:00Z"), release("v3", verified=False)]
    assert pick(releases, release="v1") == ("v1", "")
    name, why = pick(releases, release="v3")
    assert name is None and "pinned release v3" in why and "not verified" in why


def test_tenant_pin_applies_to_its_own_model_line_only():
    pinned = replace(TENANT, spec=TENANT.spec.model_copy(
        update={"rollout": TENANT.spec.rollout.model_copy(update={"pinned_release": "v1"})}))
    releases = (release("v1"), release("v2", "2026-02-01T00:00:00Z"))
    spec = AgentDeploymentSpec.model_validate(SPEC)
    assert tracks_for(spec, pinned, releases, None).stable.name == "v1"
    other_line = (release("v1", line="other"), release("v2", "2026-02-01T00:00:00Z"))
    assert tracks_for(spec, pinned, other_line, None).stable.name == "v2"


def test_no_verified_release_waits_and_creates_nothing(now):
    out = decide(observed(releases=[release(verified=False), release("v2", phase="Exporting")]), now)
    assert out.status.phase == "Waiting"
    assert conds(out.status)["Ready"] == ("False", "NoVerifiedRelease")
    assert "moe-arith" in out.status.message
    assert out.children == () and out.deletions == ()
    assert out.status.release is None and out.status.endpoint is None


def test_a_release_losing_verification_stops_serving(now):
    serving = observed(deployment=deployment(), hpa_exists=True, releases=[release(verified=False)])
    out = decide(serving, now)
    name = serving_name("arith-agent")
    assert set(out.deletions) == {("apps/v1", "Deployment", name, "team-a"),
                                  ("autoscaling/v2", "HorizontalPodAutoscaler", name, "team-a")}


def test_missing_trusted_key_waits(now):
    out = decide(observed(trust_pem=None), now)
    assert conds(out.status)["Ready"] == ("False", "NoTrustedKey")
    assert "tugboat-trust" in out.status.message
    assert out.children == ()


@pytest.mark.parametrize(("pem", "why"), [(" \n", "public.pem is empty"),
                                         ("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
                                          "public.pem is not a PEM public key")])
def test_an_unusable_trusted_key_waits_as_a_configuration_error(now, pem, why):
    out = decide(observed(trust_pem=pem, deployment=deployment()), now)
    assert conds(out.status)["Ready"] == ("False", "InvalidTrustedKey")
    assert why in out.status.message and "tugboat-trust" in out.status.message
    assert out.children == () and out.deletions  # pods given it could verify nothing


@pytest.mark.parametrize(("uri", "pvc", "servable"), [
    ("s3://bucket/v1", None, False), ("file:///art/v1", "pvc", True),
    ("file:///elsewhere/v1", "pvc", False), ("file:///elsewhere/v1", None, True)])
def test_only_artifacts_the_pods_can_see_are_served(now, uri, pvc, servable):
    out = decide(observed(releases=[release(uri=uri)], config=replace(CONFIG, artifact_pvc=pvc)), now)
    if servable:
        assert out.status.phase == "Deploying"
    else:
        assert conds(out.status)["Ready"] == ("False", "ArtifactNotServable")
        assert out.children == ()


def test_first_pass_desires_every_serving_object_and_reports_the_endpoint(now):
    out = decide(observed(), now)
    assert [o["kind"] for o in out.children] == [
        "ServiceAccount", "ConfigMap", "ConfigMap", "Service", "Service", "Service", "NetworkPolicy",
        "PodDisruptionBudget", "Deployment"]
    assert out.status.phase == "Deploying"
    assert conds(out.status)["Progressing"] == ("True", "Deploying")
    assert out.status.release == "v1" and out.status.release_digest == DIGEST
    assert out.status.endpoint == f"http://{serving_name('arith-agent')}.team-a.svc.cluster.local"
    assert (out.status.stable_release, out.status.canary_release, out.status.traffic) == (
        "v1", None, "ReplicaRatio")
    deployment_obj = out.children[-1]
    assert "--artifact" in (args := deployment_obj["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args[args.index("--artifact") + 1] == "/art/v1"


def test_all_replicas_ready_on_the_chosen_release_is_serving(now):
    out = decide(observed(deployment=deployment()), now)
    assert out.status.phase == "Serving"
    assert conds(out.status)["Ready"] == ("True", "Serving")
    assert conds(out.status)["Progressing"][0] == "False"
    assert out.status.ready_replicas == 2
    assert out.status.message == "2/2 replicas serve release v1"


@pytest.mark.parametrize("dv", [deployment(ready=1), deployment(rel="v0"), deployment(current=False)])
def test_partial_or_stale_rollout_is_still_deploying(now, dv):
    assert decide(observed(deployment=dv), now).status.phase == "Deploying"


def test_quota_failure_is_degraded_with_the_api_servers_message(now):
    dv = deployment(ready=1, failure='pods "x" is forbidden: exceeded quota: tugboat-tenant')
    out = decide(observed(deployment=dv), now)
    assert out.status.phase == "Degraded"
    assert conds(out.status)["Degraded"] == ("True", "ReplicaFailure")
    assert "exceeded quota" in out.status.message


def test_scaled_to_zero_is_idle(now):
    out = decide(observed(spec={"modelLine": "moe-arith", "replicas": 0}), now)
    assert out.status.phase == "Idle"


def test_autoscaling_reads_the_replica_count_from_the_deployment_and_drops_a_stale_hpa(now):
    spec = {"modelLine": "moe-arith", "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4}}
    out = decide(observed(spec=spec, deployment=deployment(ready=3, replicas=3)), now)
    assert out.status.phase == "Serving"
    assert out.children[-1]["kind"] == "HorizontalPodAutoscaler"
    fixed = decide(observed(hpa_exists=True, deployment=deployment()), now)
    assert [d[1] for d in fixed.deletions] == ["HorizontalPodAutoscaler"]


def test_gpus_beyond_the_tenant_limit_are_invalid(now):
    spec = {"modelLine": "moe-arith", "replicas": 3, "resources": {"gpus": 2}}
    out = decide(observed(spec=spec), now)
    assert conds(out.status)["Valid"] == ("False", "GpuLimitExceeded")
    assert "2 GPUs x 3 replicas = 6" in out.status.message and "limit of 4" in out.status.message
    per_object = replace(TENANT, spec=TENANT.spec.model_copy(update={"quota": TENANT.spec.quota.model_copy(
        update={"gpus": 100, "max_gpus_per_agent_deployment": 6})}))
    assert decide(observed(spec=spec, tenant=per_object), now).status.phase == "Deploying"


def test_model_line_not_allowed_is_invalid(now):
    out = decide(observed(spec={"modelLine": "other"}), now)
    assert conds(out.status)["Valid"] == ("False", "ModelLineNotAllowed")


@pytest.mark.parametrize(("change", "reason"), [
    ({"allowed_model_lines": ["other"]}, "ModelLineNotAllowed"),
    ({"allowed_node_pools": ["gpu-a100"]}, "NodePoolNotAllowed"),
    (None, "NamespaceNotInTenant")])
def test_a_revoked_right_stops_the_serving_it_allowed(now, change, reason):
    tenant = None if change is None else replace(TENANT, spec=TENANT.spec.model_copy(update=change))
    serving = AgentDeploymentStatus(phase="Serving", release="v1", endpoint="http://x", ready_replicas=2)
    out = decide(observed(tenant=tenant, status=serving, deployment=deployment(), hpa_exists=True), now)
    assert conds(out.status)["Valid"] == ("False", reason)
    assert out.status.phase == "Revoked" and out.status.message.startswith("serving stopped: ")
    assert {(kind, name) for _, kind, name, _ in out.deletions} == {
        ("Deployment", serving_name("arith-agent")), ("HorizontalPodAutoscaler", serving_name("arith-agent"))}
    assert out.status.endpoint is None and out.status.release is None and not out.children
    assert [e.type for e in out.events] == ["Warning"] and "Serving -> Revoked" in out.events[0].message
    # Once nothing serves it stays Revoked (no flapping back to Invalid), without a second event.
    again = decide(observed(tenant=tenant, status=out.status), now)
    assert again.status.phase == "Revoked" and not again.deletions and not again.events
    # Given back: it serves again.
    assert decide(observed(status=again.status), now).status.phase == "Deploying"


def test_a_spec_typo_keeps_what_serves(now):
    spec = SPEC | {"guardrails": {"successDetector": {"kind": "JsonSchema", "schema": "{nope"}}}
    out = decide(observed(spec=spec, deployment=deployment(), hpa_exists=True), now)
    assert out.status.phase == "Invalid" and not out.deletions


def test_unparsable_detector_schema_is_invalid(now):
    spec = SPEC | {"guardrails": {"successDetector": {"kind": "JsonSchema", "schema": "{nope"}}}
    out = decide(observed(spec=spec), now)
    assert conds(out.status)["Valid"][0] == "False"
    assert "successDetector.schema" in out.status.message


def test_a_schema_its_dialect_rejects_is_invalid_at_apply_time(now):
    spec = SPEC | {"guardrails": {"successDetector": {"kind": "JsonSchema",
                                                      "schema": '{"required": "answer"}'}}}
    out = decide(observed(spec=spec), now)
    assert conds(out.status)["Valid"] == ("False", "InvalidSuccessSchema")
    assert "keyword required" in out.status.message and not out.children


@pytest.mark.parametrize("pattern, error", [
    ("(?=secret)", "invalid perl operator: (?="),   # lookahead: Python re has it, RE2 does not
    (r"(a)\1", r"invalid escape sequence: \1"),
    ("(unclosed", "missing ): (unclosed"),
])
def test_a_deny_pattern_the_runtime_cannot_compile_is_invalid(now, pattern, error):
    spec = SPEC | {"guardrails": {"promptFilter": {"denyPatterns": ["(?i)ignore", pattern]}}}
    out = decide(observed(spec=spec), now)
    assert conds(out.status)["Valid"] == ("False", "InvalidDenyPattern")
    assert "spec.guardrails.promptFilter.denyPatterns[1]" in out.status.message
    assert error in out.status.message
    assert out.children == ()


def test_events_only_on_phase_change(now):
    first = decide(observed(), now)
    assert [e.reason for e in first.events] == ["Deploying"]
    again = decide(observed(status=first.status), now)
    assert again.events == ()
    served = decide(observed(status=first.status, deployment=deployment()), now)
    assert [e.reason for e in served.events] == ["Serving"]


def test_summaries_read_the_api_objects():
    mr = {"metadata": {"name": "v1", "namespace": "ml", "creationTimestamp": "2026-01-01T00:00:00Z"},
          "spec": {"modelLine": "moe-arith"},
          "status": {"phase": "Ready", "artifactUri": "file:///a", "manifestDigest": DIGEST,
                     "conditions": [{"type": "Verified", "status": "True"}]}}
    assert summarize_release(mr) == ReleaseView("v1", "ml", "moe-arith", True, "Ready", "file:///a",
                                                DIGEST, "2026-01-01T00:00:00Z")
    dep = {"metadata": {"generation": 3}, "spec": {"replicas": 2, "template": {"metadata": {
               "labels": {"tugboat.dev/release": "v1"},
               "annotations": {"tugboat.dev/manifest-digest": DIGEST}}}},
           "status": {"observedGeneration": 3, "readyReplicas": 1, "updatedReplicas": 2, "conditions": [
               {"type": "ReplicaFailure", "status": "True", "message": "exceeded quota"}]}}
    assert summarize_deployment(dep) == DeploymentView(2, 1, 2, True, "v1", DIGEST, "exceeded quota")
    # status.replicas (every template's pods) when the API server reports it; absent means none.
    dep["status"]["replicas"] = 3
    assert summarize_deployment(dep).total == 3
