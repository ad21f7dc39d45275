"""AgentDeployment on the real API server: waits for a verified release and the trusted key, then
owns a hardened serving stack; the quota stops pods; garbage collection takes it all away.

Runs on its own cluster. The first tests drive `reconcile` in-process, one pass at a time, so the
releases' verified status written here is not rewritten by a running ModelRelease controller;
the last tests start the operator and show its watches (releases, Deployments, trusted key).
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import yaml

from tests.integration.conftest import operator_starter, running_cluster
from tests.integration.helpers import wait_for
from tests.integration.tenancy_waits import quota_counted
from tests.integration.trust import create_trust_config_map
from tugboat.api.base import API_VERSION
from tugboat.api.kinds import AGENT_DEPLOYMENT, TENANT
from tugboat.builders.agent_deployment import guardrails_name, serving_name, trust_name
from tugboat.controllers.reconcilers import reconcile
from tugboat.controllers.settings import Settings
from tugboat.dev.api_keys import issue_api_key
from tugboat.kube.client import Kube
from tugboat_workloads.serve.caller_keys import ApiKey, key_digest, parse_api_keys

NS = "serve-team"
LINE = "moe-arith"
DIGEST = "c" * 64
SETTINGS = Settings()


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    yield from running_cluster(tmp_path_factory, "agd")


@pytest.fixture(scope="module")
def k(cl) -> Kube:
    return Kube.connect(str(cl.kubeconfig))


@pytest.fixture(scope="module")
def tenant(cl, k):
    cl.kubectl("create", "namespace", "ml-platform")
    doc = {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": NS},
           "spec": {"namespaces": [NS], "costCenter": "cc-7", "allowedModelLines": [LINE],
                    "quota": {"cpu": "2", "memory": "8Gi"}}}
    cl.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    reconcile(k, TENANT, NS, None, SETTINGS)
    quota_counted(k, NS)
    return NS


def apply(cl, doc: dict) -> None:
    cl.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def agent(name: str, **spec) -> dict:
    return {"apiVersion": API_VERSION, "kind": "AgentDeployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"modelLine": LINE, "replicas": 1, **spec}}


def release(cl, name: str, verified: bool = True, phase: str = "Ready") -> None:
    """A ModelRelease whose status says what the release pipeline would after verifying it."""
    apply(cl, {"apiVersion": API_VERSION, "kind": "ModelRelease",
               "metadata": {"name": name, "namespace": "ml-platform"},
               "spec": {"modelLine": LINE, "source": {"trainingRun": f"{name}-run"}}})
    def cond(type_: str, ok: bool = True, reason: str | None = None) -> dict:
        return {"type": type_, "status": "True" if ok else "False", "reason": reason or type_,
                "message": "test", "lastTransitionTime": "2026-01-01T00:00:00Z"}

    # Exported and Signed too, so a running ModelRelease controller takes it as finished work
    # (its TrainingRun does not exist) and leaves the verdict alone.
    verdict = cond("Verified", verified, None if verified else "DigestMismatch")
    status = {"phase": phase, "artifactUri": f"file:///var/lib/tugboat/artifacts/{name}",
              "manifestDigest": DIGEST, "conditions": [cond("Exported"), cond("Signed"), verdict]}
    def patched_and_kept() -> bool:
        # A running operator's first pass (started by the create) may write its own status over
        # ours; the verdict holds once it is still ours a second later.
        def ours() -> bool:
            out = cl.kubectl("get", "modelrelease", name, "-n", "ml-platform", "-o", "json").stdout
            got = json.loads(out)
            st = got.get("status") or {}
            # Not the phase: once Ready, the operator may go on to roll the release out.
            return verdict in st.get("conditions", []) and st.get("artifactUri") == status["artifactUri"]
        if not ours():
            cl.kubectl("patch", "modelrelease", name, "-n", "ml-platform", "--subresource=status",
                       "--type=merge", "-p", json.dumps({"status": status}))
            return False
        time.sleep(1)
        return ours()
    wait_for(patched_and_kept, timeout=30, interval=0.2, what=f"{name}'s status as the test wrote it")


def pass_once(k, name: str):
    return reconcile(k, AGENT_DEPLOYMENT, name, NS, SETTINGS)


def status_of(k, name: str) -> dict:
    return k.get(API_VERSION, "AgentDeployment", name, NS).get("status") or {}


def ready_reason(k, name: str) -> str:
    return next(c["reason"] for c in status_of(k, name)["conditions"] if c["type"] == "Ready")


def children(name: str) -> list[tuple[str, str, str]]:
    serve = serving_name(name)
    return [("v1", "ServiceAccount", serve), ("v1", "ConfigMap", guardrails_name(name)),
            ("v1", "ConfigMap", trust_name(name)), ("v1", "Service", serve),
            ("networking.k8s.io/v1", "NetworkPolicy", serve), ("policy/v1", "PodDisruptionBudget", serve),
            ("apps/v1", "Deployment", serve), ("autoscaling/v2", "HorizontalPodAutoscaler", serve)]


def test_waits_while_the_line_has_no_verified_release(cl, k, tenant):
    release(cl, "moe-arith-bad", verified=False)
    apply(cl, agent("arith", autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 2}))
    pass_once(k, "arith")
    status = status_of(k, "arith")
    assert status["phase"] == "Waiting"
    assert ready_reason(k, "arith") == "NoVerifiedRelease"
    assert LINE in status["message"]
    assert k.get_or_none("apps/v1", "Deployment", serving_name("arith"), NS) is None


def test_waits_for_the_trusted_key(cl, k, tenant):
    release(cl, "moe-arith-v1")
    pass_once(k, "arith")
    assert ready_reason(k, "arith") == "NoTrustedKey"
    assert "tugboat-system/tugboat-trust" in status_of(k, "arith")["message"]
    assert k.get_or_none("apps/v1", "Deployment", serving_name("arith"), NS) is None


def test_serves_the_verified_release_with_owned_hardened_objects(cl, k, tenant):
    pem = create_trust_config_map(cl)
    pass_once(k, "arith")
    owner_uid = k.get(API_VERSION, "AgentDeployment", "arith", NS)["metadata"]["uid"]
    for api_version, kind, name in children("arith"):
        obj = k.get(api_version, kind, name, NS)
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (owner_uid, True, True), kind
    assert k.get("v1", "ConfigMap", trust_name("arith"), NS)["data"]["public.pem"] == pem
    guard = json.loads(k.get("v1", "ConfigMap", guardrails_name("arith"), NS)["data"]["guardrails.json"])
    assert guard["costCenter"] == "cc-7" and guard["tokenBudget"]["tokensPerWindow"] == 100000
    podspec = k.get("apps/v1", "Deployment", serving_name("arith"), NS)["spec"]["template"]["spec"]
    assert podspec["automountServiceAccountToken"] is False
    assert podspec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    audit_key = next(v["secret"] for v in podspec["volumes"] if v["name"] == "audit-key")
    assert (audit_key["secretName"], audit_key["optional"]) == (SETTINGS.audit_key_secret, True)
    status = status_of(k, "arith")
    assert (status["release"], status["releaseDigest"]) == ("moe-arith-v1", DIGEST)
    assert status["endpoint"] == f"http://{serving_name('arith')}.{NS}.svc.cluster.local"
    # The ReplicaSet's pods pass Pod Security (restricted) and the tenant policies.
    wait_for(lambda: k.list("v1", "Pod", NS, label_selector="tugboat.dev/workload=serve"),
             what="serving pods admitted")


def test_a_second_pass_writes_nothing(cl, k, tenant):
    before = {kind + name: k.get(v, kind, name, NS)["metadata"]["resourceVersion"]
              for v, kind, name in children("arith") if kind != "Deployment"}
    pass_once(k, "arith")
    after = {kind + name: k.get(v, kind, name, NS)["metadata"]["resourceVersion"]
             for v, kind, name in children("arith") if kind != "Deployment"}
    assert after == before


def test_a_deny_pattern_re2_cannot_compile_is_invalid_and_serves_nothing(cl, k, tenant):
    apply(cl, agent("lookahead", guardrails={"promptFilter": {"denyPatterns": ["ok", "(?=secret)"]}}))
    pass_once(k, "lookahead")
    valid = next(c for c in status_of(k, "lookahead")["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidDenyPattern")
    assert "spec.guardrails.promptFilter.denyPatterns[1]" in valid["message"]
    assert k.get_or_none("apps/v1", "Deployment", serving_name("lookahead"), NS) is None
    assert k.get_or_none("v1", "ConfigMap", guardrails_name("lookahead"), NS) is None


def test_a_success_schema_the_runtime_would_refuse_is_invalid_and_serves_nothing(cl, k, tenant):
    detector = {"kind": "JsonSchema", "schema": json.dumps({"properties": {"n": {"minLength": -1}}})}
    apply(cl, agent("badschema", guardrails={"successDetector": detector}))
    pass_once(k, "badschema")
    valid = next(c for c in status_of(k, "badschema")["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSuccessSchema")
    assert "keyword properties/n/minLength" in valid["message"]
    assert k.get_or_none("apps/v1", "Deployment", serving_name("badschema"), NS) is None
    assert k.get_or_none("v1", "ConfigMap", guardrails_name("badschema"), NS) is None


def test_issued_api_keys_are_what_the_runtime_reads_from_the_secret(cl, k, tenant):
    first = issue_api_key(k, NS, NS, "ci", "Elevated")
    second = issue_api_key(k, NS, NS, "dashboard")
    again = issue_api_key(k, NS, NS, "ci")           # a new key of the same name replaces the old
    secret = k.get("v1", "Secret", SETTINGS.api_keys_secret, NS)
    text = base64.b64decode(secret["data"]["keys.json"]).decode()
    assert first not in text and again not in text    # hashes only
    keys = parse_api_keys(json.loads(text), "secret").by_digest
    assert keys == {key_digest(second): ApiKey("dashboard", "Standard"),
                    key_digest(again): ApiKey("ci", "Standard")}


def test_exceeding_the_cpu_quota_is_reported_as_degraded(cl, k, tenant):
    # 2 CPUs of quota, 500m per replica: the fifth pod is refused by the API server.
    apply(cl, agent("greedy", replicas=5))
    pass_once(k, "greedy")

    def refused():
        dep = k.get("apps/v1", "Deployment", serving_name("greedy"), NS)
        return any(c["type"] == "ReplicaFailure" and c["status"] == "True"
                   for c in (dep.get("status") or {}).get("conditions") or [])
    wait_for(refused, what="ReplicaFailure from the quota")
    pass_once(k, "greedy")
    status = status_of(k, "greedy")
    assert status["phase"] == "Degraded"
    assert "exceeded quota" in status["message"] and "tugboat-tenant" in status["message"]


def test_a_release_losing_verification_stops_serving(cl, k, tenant):
    release(cl, "moe-arith-v1", verified=False)
    pass_once(k, "arith")
    assert ready_reason(k, "arith") == "NoVerifiedRelease"
    assert k.get_or_none("apps/v1", "Deployment", serving_name("arith"), NS) is None
    assert k.get_or_none("autoscaling/v2", "HorizontalPodAutoscaler", serving_name("arith"), NS) is None


def test_deleting_the_agent_deployment_collects_everything_it_owned(cl, k, tenant):
    release(cl, "moe-arith-v1")
    pass_once(k, "arith")
    assert k.get_or_none("apps/v1", "Deployment", serving_name("arith"), NS) is not None
    cl.kubectl("delete", "agentdeployment", "arith", "-n", NS, "--wait=false")

    def all_gone():
        left = [kind for v, kind, name in children("arith") if k.get_or_none(v, kind, name, NS)]
        return not left or None
    wait_for(all_gone, timeout=90, what="garbage collection of the serving objects")


# --- with the operator running: its watches, not our calls, drive the reconciles ---


@pytest.fixture(scope="module")
def running_operator(cl, tmp_path_factory, tenant):
    for start in operator_starter(cl, tmp_path_factory):
        op = start("--priority", "1000")
        op.wait_for_log("tugboat operator: priority 1000")
        yield op


def deployment_of(k, name: str) -> dict | None:
    return k.get_or_none("apps/v1", "Deployment", serving_name(name), NS)


def test_a_release_verified_later_is_picked_up(cl, k, running_operator):
    apply(cl, agent("pinned", release="moe-arith-v9"))
    wait_for(lambda: status_of(k, "pinned").get("phase") == "Waiting", what="Waiting")
    assert "moe-arith-v9" in status_of(k, "pinned")["message"]
    release(cl, "moe-arith-v9")
    dep = wait_for(lambda: deployment_of(k, "pinned"), what="Deployment after the release verified")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--release") + 1] == "moe-arith-v9"
    wait_for(lambda: status_of(k, "pinned").get("release") == "moe-arith-v9", what="status.release")


def test_a_deleted_deployment_is_recreated(cl, k, running_operator):
    old = wait_for(lambda: deployment_of(k, "pinned"), what="Deployment")
    cl.kubectl("delete", "deployment", serving_name("pinned"), "-n", NS)
    wait_for(lambda: (d := deployment_of(k, "pinned")) and d["metadata"]["uid"] != old["metadata"]["uid"],
             what="Deployment recreated by the operator")


def test_a_rotated_trusted_key_reaches_the_pods(cl, k, running_operator):
    def config_hash():
        template = deployment_of(k, "pinned")["spec"]["template"]
        return template["metadata"]["annotations"]["tugboat.dev/config-hash"]
    old_hash = config_hash()
    pem = create_trust_config_map(cl)
    wait_for(lambda: k.get("v1", "ConfigMap", trust_name("pinned"), NS)["data"]["public.pem"] == pem,
             what="the key copied into the tenant namespace")
    wait_for(lambda: config_hash() != old_hash, what="pods rolled for the new key")
