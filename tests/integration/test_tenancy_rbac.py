"""Tenant isolation on the real API server, as the tenants' own users (impersonation).

The operator turns each Tenant into namespace RBAC and quota; these tests then act as a member of
tenant alpha's group (`kubectl --as --as-group`) and check what the API server lets them do.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration.helpers import condition_is, wait_for
from tests.integration.tenancy_waits import quota_counted, tenant_rbac
from tugboat.api.base import API_VERSION

ALPHA, BETA = "tn-alpha", "tn-beta"
QUOTA = 3
AS_ALPHA = ("--as=alice@alpha", f"--as-group={ALPHA}-devs")
AS_BETA = ("--as=bob@beta", f"--as-group={BETA}-devs")


def tenant(name: str) -> dict:
    return {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
            "spec": {"namespaces": [name], "groups": [f"{name}-devs"], "costCenter": f"cc-{name}",
                     "allowedModelLines": ["moe-arith"], "quota": {"agentDeployments": QUOTA}}}


def agent(name: str, namespace: str) -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": {"modelLine": "moe-arith"}})


@pytest.fixture(scope="module")
def tenants(cluster, kube, operator):
    for name in (ALPHA, BETA):
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(tenant(name)))
    for name in (ALPHA, BETA):
        tenant_rbac(kube, name)
        quota_counted(kube, name)
    return ALPHA, BETA


def as_user(cluster, who: tuple[str, ...], *args: str, input: str | None = None):
    return cluster.kubectl(*who, *args, input=input, check=False)


def test_a_tenant_manages_agent_deployments_in_its_namespace(cluster, kube, tenants):
    out = as_user(cluster, AS_ALPHA, "apply", "-f", "-", input=agent("mine", ALPHA))
    assert out.returncode == 0, out.stderr
    wait_for(condition_is(kube, "AgentDeployment", "mine", ALPHA, "Valid", "True"), what="judged")
    seen = as_user(cluster, AS_ALPHA, "get", "agentdeployment", "mine", "-n", ALPHA, "-o", "json")
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout)["status"]["conditions"], "the tenant reads its status"
    patched = as_user(cluster, AS_ALPHA, "patch", "agentdeployment", "mine", "-n", ALPHA, "--type=merge",
                      "-p", '{"spec":{"replicas":2}}')
    assert patched.returncode == 0, patched.stderr


def test_a_tenant_cannot_create_in_another_tenants_namespace(cluster, tenants):
    out = as_user(cluster, AS_ALPHA, "apply", "-f", "-", input=agent("intruder", BETA))
    assert out.returncode != 0
    assert "forbidden" in out.stderr.lower() and BETA in out.stderr
    # The same request from beta's own member is fine: RBAC, not the object, made the difference.
    own = as_user(cluster, AS_BETA, "apply", "-f", "-", input=agent("theirs", BETA))
    assert own.returncode == 0, own.stderr


def test_a_tenant_cannot_read_another_tenants_objects_or_any_secrets(cluster, tenants):
    for args in (("get", "agentdeployments", "-n", BETA), ("get", "pods", "-n", BETA),
                 ("get", "secrets", "-n", BETA), ("get", "secrets", "-n", ALPHA),
                 ("get", "agentdeployments", "-A")):
        out = as_user(cluster, AS_ALPHA, *args)
        assert out.returncode != 0, f"{args} was allowed"
        assert "forbidden" in out.stderr.lower(), out.stderr


@pytest.mark.parametrize(("verb", "resource", "namespace", "allowed"), [
    ("get", "pods/log", ALPHA, "yes"), ("list", "events", ALPHA, "yes"), ("watch", "pods", ALPHA, "yes"),
    ("get", "pods/log", BETA, "no"), ("create", "pods", ALPHA, "no"), ("get", "configmaps", ALPHA, "no"),
])
def test_a_tenant_reads_logs_and_events_of_its_own_namespace_only(cluster, tenants, verb, resource,
                                                                   namespace, allowed):
    out = as_user(cluster, AS_ALPHA, "auth", "can-i", verb, resource, "-n", namespace)
    assert out.stdout.strip() == allowed, (out.stdout, out.stderr)


def test_a_tenant_cannot_edit_or_delete_its_tenant(cluster, tenants):
    patch = as_user(cluster, AS_ALPHA, "patch", "tenant", ALPHA, "--type=merge",
                    "-p", '{"spec":{"quota":{"agentDeployments":100}}}')
    assert patch.returncode != 0 and "forbidden" in patch.stderr.lower(), patch.stderr
    delete = as_user(cluster, AS_ALPHA, "delete", "tenant", ALPHA)
    assert delete.returncode != 0 and "forbidden" in delete.stderr.lower(), delete.stderr


def test_a_tenant_cannot_exceed_its_agent_deployment_quota(cluster, kube, tenants):
    existing = len(kube.list(API_VERSION, "AgentDeployment", ALPHA))
    for i in range(QUOTA - existing):
        out = as_user(cluster, AS_ALPHA, "apply", "-f", "-", input=agent(f"quota-{i}", ALPHA))
        assert out.returncode == 0, out.stderr
    over = as_user(cluster, AS_ALPHA, "apply", "-f", "-", input=agent("one-too-many", ALPHA))
    assert over.returncode != 0
    assert "exceeded quota" in over.stderr and "count/agentdeployments.tugboat.dev" in over.stderr
    assert len(kube.list(API_VERSION, "AgentDeployment", ALPHA)) == QUOTA
