"""Tenant builders: namespace labels without ownership, the quota split, RBAC and network policy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tugboat.api.tenant import TenantQuota, TenantSpec
from tugboat.builders.tenant import (
    DEFAULT_DENY,
    OBJECT_NAME,
    TENANT_CLUSTER_ROLE,
    TenantContext,
    build_tenant_cluster_role,
    build_tenant_objects,
    label_value,
    parse_quantity,
    quota_share,
)

OWNER = {"apiVersion": "tugboat.dev/v1alpha1", "kind": "Tenant",
         "metadata": {"name": "team-a", "uid": "uid-team-a"}}
CTX = TenantContext(OWNER, gateway_namespace="gw", monitoring_namespace="mon")


def tenant_spec(**overrides) -> TenantSpec:
    raw = {"namespaces": ["team-a"], "groups": ["team-a-devs"], "costCenter": "cc-1"} | overrides
    return TenantSpec.model_validate(raw)


def by_kind(objs, kind, namespace=None):
    return [o for o in objs if o["kind"] == kind
            and (namespace is None or o["metadata"].get("namespace", o["metadata"]["name"]) == namespace)]


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("8", Decimal(8)), ("1.5", Decimal("1.5")), ("16Gi", Decimal(16 * 2**30)),
    ("512Mi", Decimal(512 * 2**20)), ("2k", Decimal(2000)), ("1e3", Decimal(1000)), ("100n", Decimal("1e-7")),
])
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "5Xi", "1..2", "-1"])
def test_parse_quantity_rejects_garbage_naming_it(bad):
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(bad)


def test_single_namespace_gets_the_quota_verbatim():
    hard = quota_share(TenantQuota(cpu="8", memory="16Gi", gpus=2, agent_deployments=5), 1, 0)
    assert hard == {"requests.cpu": "8", "limits.cpu": "8", "requests.memory": "16Gi",
                    "limits.memory": "16Gi", "requests.nvidia.com/gpu": "2",
                    "count/agentdeployments.tugboat.dev": "5"}


def test_split_quota_gives_remainders_to_the_first_namespaces():
    quota = TenantQuota(cpu="1", memory="1Gi", gpus=5, agent_deployments=7)
    shares = [quota_share(quota, 3, i) for i in range(3)]
    assert [s["requests.cpu"] for s in shares] == ["334m", "333m", "333m"]
    assert [s["requests.nvidia.com/gpu"] for s in shares] == ["2", "2", "1"]
    assert [s["count/agentdeployments.tugboat.dev"] for s in shares] == ["3", "2", "2"]


@given(millicores=st.integers(0, 10**7), octets=st.integers(0, 2**50), gpus=st.integers(0, 1000),
       parts=st.integers(1, 40))
def test_split_quota_never_exceeds_the_tenant_total(millicores, octets, gpus, parts):
    quota = TenantQuota(cpu=f"{millicores}m", memory=str(octets), gpus=gpus, agent_deployments=gpus)
    shares = [quota_share(quota, parts, i) for i in range(parts)]
    assert sum(parse_quantity(s["requests.cpu"]) for s in shares) * 1000 == millicores
    assert sum(parse_quantity(s["limits.memory"]) for s in shares) == octets
    assert sum(int(s["requests.nvidia.com/gpu"]) for s in shares) == gpus


def test_namespace_is_labelled_but_never_owned():
    spec = tenant_spec(rollout={"wave": 2})
    (ns,) = by_kind(build_tenant_objects(spec, CTX), "Namespace")
    assert "ownerReferences" not in ns["metadata"]  # tenant data outlives the Tenant
    labels = ns["metadata"]["labels"]
    assert labels["tugboat.dev/tenant"] == "team-a"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["tugboat.dev/rollout-wave"] == "2"
    assert labels["app.kubernetes.io/managed-by"] == "tugboat"
    assert labels["app.kubernetes.io/part-of"] == "tugboat"


def test_everything_but_the_namespace_is_owned_by_the_tenant():
    objs = build_tenant_objects(tenant_spec(namespaces=["a", "b"]), CTX)
    assert [o["kind"] for o in objs[:5]] == ["Namespace", "ResourceQuota", "LimitRange",
                                             "NetworkPolicy", "RoleBinding"]
    for obj in objs:
        if obj["kind"] != "Namespace":
            (ref,) = obj["metadata"]["ownerReferences"]
            assert ref == {"apiVersion": "tugboat.dev/v1alpha1", "kind": "Tenant", "name": "team-a",
                           "uid": "uid-team-a", "controller": True, "blockOwnerDeletion": True}
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] == "RoleBinding"} == {"a", "b"}
    assert not [o for o in objs if o["kind"] in ("Role", "ClusterRole")], "the operator writes no roles"


def test_role_lets_groups_manage_agent_deployments_and_read_pods_logs_events_only():
    objs = build_tenant_objects(tenant_spec(groups=["devs", "ops"]), CTX)
    role = build_tenant_cluster_role()
    (binding,) = by_kind(objs, "RoleBinding")
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"]
               for g in rule["apiGroups"] for r in rule["resources"]}
    assert "create" in granted[("tugboat.dev", "agentdeployments")]
    assert granted[("tugboat.dev", "agentdeployments/status")] == {"get", "list", "watch"}
    assert granted[("", "pods/log")] == {"get"}
    assert granted[("", "pods")] == {"get", "list", "watch"}
    assert not any(r in ("secrets", "*") for _, r in granted), "tenants never read Secrets"
    assert not any("create" in v for (g, r), v in granted.items() if r != "agentdeployments")
    # The shared ClusterRole, bound per namespace: the operator binds it by name (RBAC `bind`).
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": TENANT_CLUSTER_ROLE}
    assert binding["metadata"]["name"] == OBJECT_NAME and role["metadata"]["name"] == TENANT_CLUSTER_ROLE
    assert [s["name"] for s in binding["subjects"]] == ["devs", "ops"]
    assert all(s["kind"] == "Group" for s in binding["subjects"])


def test_default_deny_admits_only_the_gateway_and_monitoring_namespaces():
    (policy,) = by_kind(build_tenant_objects(tenant_spec(), CTX), "NetworkPolicy")
    assert policy["metadata"]["name"] == DEFAULT_DENY
    assert policy["spec"]["podSelector"] == {}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    names = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]]
    assert names == ["gw", "mon"]


def test_label_value_keeps_long_names_unique_and_short():
    long_a, long_b = "a" * 80 + "x", "a" * 80 + "y"
    assert label_value("short") == "short"
    assert len(label_value(long_a)) <= 63
    assert label_value(long_a) != label_value(long_b)


def test_created_namespaces_carry_the_mark_the_charts_namespace_guard_checks():
    from tugboat.builders.tenant import CREATED_MARK, build_created_namespace
    from tugboat.dev.tools import repo_root

    guard = (repo_root() / "charts" / "tugboat" / "templates" / "namespace-guard.yaml").read_text()
    assert f'$mark := "{CREATED_MARK}"' in guard
    assert build_created_namespace("t")["metadata"]["annotations"] == {CREATED_MARK: "true"}
