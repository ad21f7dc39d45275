"""Deleting a Tenant keeps tenant data unless its spec says deletionPolicy: Delete, and never
touches a namespace that belongs to another tenant."""

from __future__ import annotations

import yaml

from tests.integration.helpers import condition_is, wait_for
from tests.integration.tenancy_waits import quota_counted, tenant_rbac
from tugboat.api.base import API_VERSION


def tenant(name: str, namespaces: list[str], policy: str = "Retain") -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
                           "spec": {"namespaces": namespaces, "costCenter": "cc-del",
                                    "deletionPolicy": policy, "allowedModelLines": ["moe-arith"]}})


def agent(namespace: str) -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                           "metadata": {"name": "data", "namespace": namespace},
                           "spec": {"modelLine": "moe-arith"}})


def set_up(cluster, kube, name: str, policy: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=tenant(name, [name], policy))
    wait_for(condition_is(kube, "Tenant", name, None, "Ready", "True"), what=f"Tenant {name} set up")
    tenant_rbac(kube, name)
    quota_counted(kube, name)
    cluster.kubectl("apply", "-f", "-", input=agent(name))


def test_retain_keeps_the_namespace_and_its_data(cluster, kube, operator):
    set_up(cluster, kube, "keep-team", "Retain")
    tn = kube.get(API_VERSION, "Tenant", "keep-team")
    assert "tugboat.dev/finalizer" not in (tn["metadata"].get("finalizers") or [])
    cluster.kubectl("delete", "tenant", "keep-team", "--timeout=60s")
    # What the Tenant owned is garbage-collected by the controller manager...
    wait_for(lambda: kube.get_or_none("v1", "ResourceQuota", "tugboat-tenant", "keep-team") is None,
             timeout=90, what="quota collected")
    wait_for(lambda: kube.get_or_none("rbac.authorization.k8s.io/v1", "RoleBinding", "tugboat-tenant",
                                      "keep-team") is None, timeout=90, what="role binding collected")
    # ...the tenant's namespace and data are not.
    ns = kube.get("v1", "Namespace", "keep-team")
    assert ns["status"]["phase"] == "Active" and not ns["metadata"].get("deletionTimestamp")
    assert kube.get_or_none(API_VERSION, "AgentDeployment", "data", "keep-team") is not None


def test_delete_policy_takes_the_namespaces_with_it(cluster, kube, operator):
    set_up(cluster, kube, "drop-team", "Delete")
    wait_for(lambda: "tugboat.dev/finalizer" in (kube.get(API_VERSION, "Tenant", "drop-team")["metadata"]
                                                  .get("finalizers") or []), what="finalizer")
    cluster.kubectl("delete", "tenant", "drop-team", "--wait=false")
    wait_for(lambda: kube.get_or_none(API_VERSION, "Tenant", "drop-team") is None, what="Tenant gone")
    wait_for(lambda: (ns := kube.get_or_none("v1", "Namespace", "drop-team")) is None
             or ns["metadata"].get("deletionTimestamp"), what="namespace deleted")
    wait_for(lambda: kube.get_or_none("v1", "Namespace", "drop-team") is None, timeout=120,
             what="namespace and its data gone")


def test_delete_policy_spares_a_namespace_another_tenant_owns(cluster, kube, operator):
    set_up(cluster, kube, "owner-team", "Retain")
    # A later Tenant listing the same namespace (even within the same second) is refused, and
    # deleting it must not take the other tenant's data.
    cluster.kubectl("apply", "-f", "-", input=tenant("grabber", ["owner-team", "grabber"], "Delete"))
    wait_for(condition_is(kube, "Tenant", "grabber", None, "Valid", "False"), what="claim refused")
    wait_for(lambda: "tugboat.dev/finalizer" in (kube.get(API_VERSION, "Tenant", "grabber")["metadata"]
                                                  .get("finalizers") or []), what="finalizer")
    cluster.kubectl("delete", "tenant", "grabber", "--timeout=60s")
    ns = kube.get("v1", "Namespace", "owner-team")
    assert not ns["metadata"].get("deletionTimestamp")
    assert kube.get_or_none(API_VERSION, "AgentDeployment", "data", "owner-team") is not None
