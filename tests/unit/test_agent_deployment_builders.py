"""AgentDeployment builders: hardened pod, runtime flags, guardrails JSON, ownership, names."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tugboat.api.agent_deployment import AgentDeploymentSpec
from tugboat.api.tenant import TenantSpec
from tugboat.builders.agent_deployment import (
    ServingConfig,
    ServingContext,
    ServingRelease,
    build_deployment,
    build_guardrails,
    build_serving_objects,
    check_budget_store,
    permission_level,
    serving_name,
)
from tugboat_workloads.serve.settings import resolve_settings

OWNER = {"apiVersion": "tugboat.dev/v1alpha1", "kind": "AgentDeployment",
         "metadata": {"name": "arith-agent", "namespace": "team-a", "uid": "uid-agd"}}
CONFIG = ServingConfig(image="ghcr.io/tugboat-dev/tugboat-serve:1", pool_label="tugboat.dev/pool",
                       artifact_root="/artifacts", artifact_pvc=None, gateway_namespace="gw",
                       monitoring_namespace="mon")
TENANT = TenantSpec.model_validate({
    "namespaces": ["team-a"], "costCenter": "cc-1042", "permissionLevel": "ReadOnly",
    "tokenBudget": {"tokensPerWindow": 5000, "windowSeconds": 60}})
RELEASE = ServingRelease("moe-arith-v1", "/artifacts/releases/moe-arith-v1", "a" * 64)


def spec(**overrides) -> AgentDeploymentSpec:
    return AgentDeploymentSpec.model_validate({"modelLine": "moe-arith"} | overrides)


def ctx(**overrides) -> ServingContext:
    base = ServingContext(OWNER, "team-a", TENANT, RELEASE, "PEM", CONFIG)
    return replace(base, **overrides)


def objects(s=None, c=None) -> dict[str, dict]:
    """The first object of each kind: the Service over both tracks, the stable Deployment."""
    out: dict[str, dict] = {}
    for o in build_serving_objects(s or spec(), c or ctx()):
        out.setdefault(o["kind"], o)
    return out


def pod(s=None, c=None) -> dict:
    return objects(s, c)["Deployment"]["spec"]["template"]


def test_runtime_command_and_flags_follow_the_contract():
    (container,) = pod()["spec"]["containers"]
    assert container["command"] == ["python", "-m", "tugboat_workloads.serve"]
    assert container["args"] == [
        "--artifact", "/artifacts/releases/moe-arith-v1",
        "--public-key", "/etc/tugboat/trust/public.pem",
        "--guardrails", "/etc/tugboat/guardrails/guardrails.json",
        "--audit-key-file", "/etc/tugboat/audit-key/key",
        "--api-keys-file", "/etc/tugboat/api-keys/keys.json",
        "--release", "moe-arith-v1", "--track", "stable", "--tenant", "team-a",
        "--agent-deployment", "arith-agent", "--host", "0.0.0.0", "--port", "8080", "--graph", "fp32"]
    assert container["image"] == CONFIG.image
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"  # refusals show in status


def test_the_graph_and_its_fp32_fallback_reach_the_runtime_and_roll_the_pods():
    (container,) = pod(c=ctx(graph="int8", graph_fallback=True))["spec"]["containers"]
    assert container["args"][-3:] == ["--graph", "int8", "--graph-fallback"]
    (strict,) = pod(c=ctx(graph="int8"))["spec"]["containers"]
    assert strict["args"][-2:] == ["--graph", "int8"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_pod_is_hardened():
    template = pod()
    podspec = template["spec"]
    (container,) = podspec["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert podspec["securityContext"]["runAsNonRoot"] is True
    assert podspec["securityContext"]["runAsUser"] != 0
    assert podspec["automountServiceAccountToken"] is False
    assert not podspec.get("hostNetwork") and not podspec.get("hostPID")
    assert template["metadata"]["labels"]["tugboat.dev/workload"] == "serve"
    assert objects()["ServiceAccount"]["automountServiceAccountToken"] is False


def test_mounts_trust_guardrails_and_no_artifact_volume_in_dev():
    podspec = pod()["spec"]
    mounts = {m["mountPath"]: m for m in podspec["containers"][0]["volumeMounts"]}
    assert mounts["/etc/tugboat/trust"]["readOnly"] and mounts["/etc/tugboat/guardrails"]["readOnly"]
    assert "/artifacts" not in mounts
    assert "artifacts" not in {v["name"] for v in podspec["volumes"]}


def test_mounts_the_tenants_audit_key_secret_and_passes_its_file_to_the_runtime():
    podspec = pod(c=ctx(config=replace(CONFIG, audit_key_secret="acme-audit")))["spec"]
    volume = next(v for v in podspec["volumes"] if v["name"] == "audit-key")
    assert volume["secret"] == {"secretName": "acme-audit", "optional": True, "defaultMode": 0o440,
                                "items": [{"key": "key", "path": "key"}]}
    container = podspec["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "audit-key")
    assert mount["readOnly"] is True
    # What the builder writes, the runtime's own flag parser reads as the key file in that mount.
    settings = resolve_settings(container["args"], {})
    assert settings.audit_key_file == f"{mount['mountPath']}/key"


def test_mounts_the_tenants_api_keys_secret_and_passes_its_file_to_the_runtime():
    podspec = pod(c=ctx(config=replace(CONFIG, api_keys_secret="acme-keys")))["spec"]
    volume = next(v for v in podspec["volumes"] if v["name"] == "api-keys")
    assert volume["secret"] == {"secretName": "acme-keys", "optional": True, "defaultMode": 0o440,
                                "items": [{"key": "keys.json", "path": "keys.json"}]}
    container = podspec["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "api-keys")
    assert resolve_settings(container["args"], {}).api_keys_file == f"{mount['mountPath']}/keys.json"


def test_artifact_pvc_is_mounted_read_only_at_the_root():
    c = ctx(config=replace(CONFIG, artifact_pvc="artifacts-pvc"))
    podspec = pod(c=c)["spec"]
    volumes = {v["name"]: v for v in podspec["volumes"]}
    assert volumes["artifacts"]["persistentVolumeClaim"] == {"claimName": "artifacts-pvc", "readOnly": True}
    mounts = {m["name"]: m for m in podspec["containers"][0]["volumeMounts"]}
    assert mounts["artifacts"] == {"name": "artifacts", "mountPath": "/artifacts", "readOnly": True}


def test_config_maps_carry_the_key_and_the_guardrails():
    maps = {o["metadata"]["name"]: o for o in build_serving_objects(spec(), ctx())
            if o["kind"] == "ConfigMap"}
    assert len(maps) == 2
    trust = next(m for n, m in maps.items() if "-trust-" in n)
    guard = next(m for n, m in maps.items() if "-guardrails-" in n)
    assert trust["data"] == {"public.pem": "PEM"}
    assert json.loads(guard["data"]["guardrails.json"])["costCenter"] == "cc-1042"
    volumes = {v["name"]: v["configMap"]["name"] for v in pod()["spec"]["volumes"] if "configMap" in v}
    assert volumes == {"trust": trust["metadata"]["name"], "guardrails": guard["metadata"]["name"]}


def test_guardrails_json_shape():
    s = spec(guardrails={
        "promptFilter": {"denyPatterns": ["(?i)ignore"], "maxPromptChars": 512},
        "tools": {"allowed": ["search", "calculator"]},
        "fallback": {"minConfidence": 0.7, "mode": "SimpleModel"},
        "permissionLevel": "Elevated",
        "successDetector": {"kind": "Regex", "pattern": "^[0-9]+$"}})
    assert build_guardrails(s, TENANT) == {
        "promptFilter": {"denyPatterns": ["(?i)ignore"], "maxPromptChars": 512},
        "tokenBudget": {"tokensPerWindow": 5000, "windowSeconds": 60,
                        "onStoreUnavailable": "FailOpen"},
        "tools": {"allowed": ["calculator", "search"]},
        "fallback": {"minConfidence": 0.7, "mode": "SimpleModel"},
        "permissionLevel": "ReadOnly",  # the tenant's ceiling wins over the deployment's wish
        "costCenter": "cc-1042",
        "successDetector": {"kind": "Regex", "pattern": "^[0-9]+$"}}


def test_guardrails_json_is_what_the_serving_runtime_accepts():
    from tugboat_workloads.serve.guardrail_config import parse_guardrail_config

    for detector in ({"kind": "Task"}, {"kind": "Regex", "pattern": "x"},
                     {"kind": "JsonSchema", "schema": '{"type": "object"}'},
                     {"kind": "Reference", "reference": "42", "match": "partial"}):
        doc = build_guardrails(spec(guardrails={"successDetector": detector}), TENANT)
        parsed = parse_guardrail_config(doc)
        assert parsed.success_detector.kind == detector["kind"]
        assert parsed.cost_center == "cc-1042"


@pytest.mark.parametrize(("tenant", "agent", "level"), [
    ("ReadOnly", "Elevated", "ReadOnly"), ("Elevated", "Standard", "Standard"),
    ("Standard", "Standard", "Standard"), ("Elevated", "Elevated", "Elevated")])
def test_permission_level_is_the_stricter(tenant, agent, level):
    assert permission_level(tenant, agent) == level


def test_everything_is_owned_by_the_agent_deployment_and_labelled():
    for obj in build_serving_objects(spec(autoscaling={"enabled": True}), ctx()):
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {"apiVersion": "tugboat.dev/v1alpha1", "kind": "AgentDeployment",
                       "name": "arith-agent", "uid": "uid-agd", "controller": True,
                       "blockOwnerDeletion": True}
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tugboat"
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "tugboat"


def test_hpa_only_with_autoscaling_and_then_it_owns_the_replicas():
    fixed = objects(spec(replicas=3))
    assert "HorizontalPodAutoscaler" not in fixed
    assert fixed["Deployment"]["spec"]["replicas"] == 3
    scaled = objects(spec(autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 5}))
    assert "replicas" not in scaled["Deployment"]["spec"]
    hpa = scaled["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["scaleTargetRef"]["name"] == scaled["Deployment"]["metadata"]["name"]


def test_node_pool_and_gpus():
    s = spec(nodePool="gpu", resources={"gpus": 2, "cpu": "4", "memory": "8Gi"})
    podspec = pod(s)["spec"]
    assert podspec["nodeSelector"] == {"tugboat.dev/pool": "gpu"}
    assert podspec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    res = podspec["containers"][0]["resources"]
    assert res["limits"] == res["requests"] == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"}
    assert pod()["spec"]["tolerations"] == []


def test_service_network_policy_and_pdb_select_the_serving_pods():
    objs = objects()
    pod_labels = pod()["metadata"]["labels"]
    for selector in (objs["Service"]["spec"]["selector"],
                     objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
                     objs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
                     objs["Deployment"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    np = objs["NetworkPolicy"]["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"]
    sources = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for p in np["ingress"][0]["from"]]
    assert sources == ["gw", "mon"]
    assert objs["Service"]["spec"]["ports"][0]["targetPort"] == "http"


def test_guardrail_or_key_change_rolls_the_pods():
    def config_hash(s=None, c=None):
        return pod(s, c)["metadata"]["annotations"]["tugboat.dev/config-hash"]
    hashes = {config_hash(), config_hash(spec(guardrails={"tools": {"allowed": ["x"]}})),
              config_hash(c=ctx(trust_pem="OTHER"))}
    assert len(hashes) == 3
    assert config_hash() == config_hash(spec())


def test_release_digest_is_in_the_template():
    template = build_deployment(spec(), ctx())["spec"]["template"]
    assert template["metadata"]["annotations"]["tugboat.dev/manifest-digest"] == "a" * 64
    assert template["metadata"]["labels"]["tugboat.dev/release"] == "moe-arith-v1"


def test_child_names_keep_the_hash_when_the_parent_is_long():
    long = "a" * 70
    name = serving_name(long)
    assert len(name) <= 63
    assert name.split("-")[-2] == "serve" and len(name.split("-")[-1]) == 8
    assert serving_name(long + "b") != name
    assert serving_name("arith-agent").startswith("arith-agent-serve-")


def test_budget_store_reaches_the_runtime_as_its_env_var_and_egress_opens_its_port():
    c = ctx(config=replace(CONFIG, budget_store="redis://budget.tugboat-system:6380/0"))
    container = pod(c=c)["spec"]["containers"][0]
    environ = {e["name"]: e["value"] for e in container["env"]}
    # The runtime's own parser reads what the builder wrote.
    assert resolve_settings(container["args"], environ).budget_store == "redis://budget.tugboat-system:6380/0"
    egress = objects(c=c)["NetworkPolicy"]["spec"]["egress"]
    assert {"ports": [{"protocol": "TCP", "port": 6380}]} in egress
    # Without a store: no env var and DNS-only egress, as before.
    assert "env" not in pod()["spec"]["containers"][0]
    assert len(objects()["NetworkPolicy"]["spec"]["egress"]) == 1


@pytest.mark.parametrize("url", ["http://redis:6379", "redis://", "redis://host:99999"])
def test_malformed_budget_store_urls_are_refused(url):
    with pytest.raises(ValueError):
        check_budget_store(url)
    check_budget_store("rediss://user:pw@host/1")
