"""Deleting a Tenant keeps tenant data unless its spec says deletionPolicy: Delete, and then
deletes only the namespaces the operator created for it: never one that belongs to another
tenant, one it adopted, or a reserved one (which it may not even claim)."""

from __future__ import annotations

import yaml

from tests.integration.helpers import condition_is, events_for, wait_for
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


def set_up(cluster, kube, name: str, policy: str, namespaces: list[str] | None = None) -> None:
    cluster.kubectl("apply", "-f", "-", input=tenant(name, namespaces or [name], policy))
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


TENANT_OBJECTS = (("v1", "ResourceQuota", "tugboat-tenant"), ("v1", "LimitRange", "tugboat-tenant"),
                  ("networking.k8s.io/v1", "NetworkPolicy", "tugboat-default-deny"),
                  ("rbac.authorization.k8s.io/v1", "RoleBinding", "tugboat-tenant"))


def ours_in(kube, namespace: str) -> tuple:
    """What the operator wrote in a namespace: its labels and fields there, and our objects in it."""
    meta = kube.get("v1", "Namespace", namespace)["metadata"]
    assert not meta.get("deletionTimestamp"), namespace
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k.startswith(("tugboat.dev/", "pod-security."))}
    fields = [f.get("fieldsV1") for f in meta.get("managedFields") or [] if f.get("manager") == "tugboat"]
    objects = [kind for api_version, kind, name in TENANT_OBJECTS
               if kube.get_or_none(api_version, kind, name, namespace) is not None]
    return labels, fields, objects


def tenant_events(kube, name: str, reason: str) -> list[str]:
    # A cluster-scoped object's Events live in the default namespace.
    return [e["message"] for e in events_for(kube, name, "default") if e["reason"] == reason]


def test_reserved_namespaces_are_refused_and_nothing_is_written_there(cluster, kube, operator):
    before = {ns: ours_in(kube, ns) for ns in ("kube-system", "default")}
    assert before["kube-system"] == ({}, [], [])
    cluster.kubectl("apply", "-f", "-", input=tenant("squatter", ["kube-system", "default", "sq-new"],
                                                     "Delete"))
    tn = wait_for(condition_is(kube, "Tenant", "squatter", None, "Valid", "False"), what="claim refused")
    valid = next(c for c in tn["status"]["conditions"] if c["type"] == "Valid")
    assert valid["reason"] == "NamespaceReserved"
    assert "kube-system (as kube-*)" in valid["message"] and "default" in valid["message"]
    # The refusing pass would have applied its objects before writing this status.
    assert {ns: ours_in(kube, ns) for ns in before} == before
    assert kube.get_or_none("v1", "Namespace", "sq-new") is None, "a refused tenant creates nothing"
    wait_for(lambda: "tugboat.dev/finalizer" in (kube.get(API_VERSION, "Tenant", "squatter")["metadata"]
                                                  .get("finalizers") or []), what="finalizer")
    cluster.kubectl("delete", "tenant", "squatter", "--timeout=60s")
    assert {ns: ours_in(kube, ns) for ns in before} == before
    kept = tenant_events(kube, "squatter", "NamespaceKept")
    assert any("kube-system" in m and "reserved" in m for m in kept), kept


def test_delete_policy_deletes_the_namespace_it_created_and_keeps_the_one_it_adopted(cluster, kube,
                                                                                    operator):
    # The platform team made this namespace, and data in it, before any Tenant listed it.
    cluster.kubectl("create", "namespace", "adopted-team")
    cluster.kubectl("create", "configmap", "precious", "-n", "adopted-team", "--from-literal=k=v")
    set_up(cluster, kube, "adopter", "Delete", ["adopted-team", "adopter"])
    created = kube.get("v1", "Namespace", "adopter")["metadata"]["uid"]
    recorded = kube.get(API_VERSION, "Tenant", "adopter")["status"].get("createdNamespaces")
    # Set up like a created one, labels included (the label main's deletion trusted).
    labels = kube.get("v1", "Namespace", "adopted-team")["metadata"]["labels"]
    assert labels["tugboat.dev/tenant"] == "adopter"
    tenant_rbac(kube, "adopted-team")
    wait_for(lambda: "tugboat.dev/finalizer" in (kube.get(API_VERSION, "Tenant", "adopter")["metadata"]
                                                  .get("finalizers") or []), what="finalizer")
    cluster.kubectl("delete", "tenant", "adopter", "--timeout=60s")
    wait_for(lambda: kube.get_or_none("v1", "Namespace", "adopter") is None, timeout=120,
             what="the created namespace gone")
    ns = kube.get("v1", "Namespace", "adopted-team")
    assert not ns["metadata"].get("deletionTimestamp")
    assert kube.get_or_none("v1", "ConfigMap", "precious", "adopted-team") is not None
    assert "tugboat.dev/tenant" not in (ns["metadata"].get("labels") or {}), "our labels are dropped"
    assert recorded == [{"name": "adopter", "uid": created}]
    wait_for(lambda: kube.get_or_none("v1", "ResourceQuota", "tugboat-tenant", "adopted-team") is None,
             timeout=90, what="the adopted namespace's quota collected")
    kept = tenant_events(kube, "adopter", "NamespaceKept")
    assert any("adopted-team" in m and "adopted" in m for m in kept), kept
    assert any("adopter" in m for m in tenant_events(kube, "adopter", "NamespaceDeleted"))
