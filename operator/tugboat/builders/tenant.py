"""Tenant -> what each of its namespaces holds: the Namespace's labels, a ResourceQuota, a
LimitRange, a default-deny NetworkPolicy that admits the gateway, and a RoleBinding of the shared
`tugboat-tenant` ClusterRole letting the tenant's groups manage AgentDeployments there. Pure.

The ClusterRole ships with the chart (generated from `build_tenant_cluster_role`), so the operator
binds it by name (RBAC `bind` with resourceNames) and never needs the tenants' rights itself, nor
`escalate`, nor the right to write Roles.

Decides names, labels, ownership and the per-namespace share of the tenant's quota. The Namespace
carries no owner reference (tenant data must outlive the Tenant); everything else is owned by the
Tenant, so the garbage collector removes it with the Tenant. Must not read the cluster or the env.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from ..api.base import GROUP
from ..api.tenant import TenantQuota, TenantSpec
from .naming import label_value, managed_labels, owner_reference

TENANT_LABEL = f"{GROUP}/tenant"
WAVE_LABEL = f"{GROUP}/rollout-wave"
# One of each per namespace under a fixed name: a namespace handed from one tenant to another
# converges on the same objects instead of collecting both tenants' quotas.
OBJECT_NAME = "tugboat-tenant"
DEFAULT_DENY = "tugboat-default-deny"
TENANT_CLUSTER_ROLE = "tugboat-tenant"
GPU_RESOURCE = "nvidia.com/gpu"
# Pods that state no resources still count against the quota with these (a quota on
# requests/limits rejects pods without them otherwise).
DEFAULT_LIMIT = {"cpu": "500m", "memory": "512Mi"}
DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi"}
ROLE_RULES = [
    {"apiGroups": [GROUP], "resources": ["agentdeployments"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
    {"apiGroups": [GROUP], "resources": ["agentdeployments/status"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_QUANTITY = re.compile(r"^\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[a-zA-Z]*|[eE][-+]?[0-9]+)$")


@dataclass(frozen=True)
class TenantContext:
    owner: dict  # the Tenant (apiVersion, kind, metadata.name/uid)
    gateway_namespace: str
    monitoring_namespace: str


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "16Gi", "1e3") as a plain number of base units."""
    m = _QUANTITY.match(text.strip())
    if m is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, suffix = Decimal(m["num"]), m["suffix"]
    if suffix in _BINARY:
        return number * (2 ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    if suffix[:1] in "eE":
        return number.scaleb(int(suffix[1:]))
    raise ValueError(f"not a Kubernetes quantity: {text!r} (unknown suffix {suffix!r})")


def _share(total: int, parts: int, index: int) -> int:
    # Remainders go to the first namespaces, so the shares always add up to the total.
    return total // parts + (1 if index < total % parts else 0)


def quota_share(quota: TenantQuota, parts: int, index: int) -> dict[str, str]:
    """The `index`-th of `parts` namespaces' part of the tenant's quota, as ResourceQuota hard limits."""
    if parts == 1:
        cpu, memory = quota.cpu, quota.memory
    else:
        millicores = int((parse_quantity(quota.cpu) * 1000).to_integral_value(ROUND_FLOOR))
        octets = int(parse_quantity(quota.memory).to_integral_value(ROUND_FLOOR))
        cpu, memory = f"{_share(millicores, parts, index)}m", str(_share(octets, parts, index))
    return {
        "requests.cpu": cpu, "limits.cpu": cpu,
        "requests.memory": memory, "limits.memory": memory,
        f"requests.{GPU_RESOURCE}": str(_share(quota.gpus, parts, index)),
        f"count/agentdeployments.{GROUP}": str(_share(quota.agent_deployments, parts, index)),
    }


def _meta(name: str, namespace: str, ctx: TenantContext) -> dict:
    tenant = ctx.owner["metadata"]["name"]
    return {"name": name, "namespace": namespace,
            "labels": managed_labels(**{TENANT_LABEL: label_value(tenant)}),
            "ownerReferences": [owner_reference(ctx.owner)]}


def build_namespace(namespace: str, spec: TenantSpec, ctx: TenantContext) -> dict:
    labels = managed_labels(**{
        TENANT_LABEL: label_value(ctx.owner["metadata"]["name"]),
        WAVE_LABEL: str(spec.rollout.wave),
        # The API server's own Pod Security admission, as a floor under our policies.
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    })
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}


# Set when the operator creates a namespace, never afterwards: the chart's namespace guard lets the
# operator's ServiceAccount delete only namespaces carrying it, and refuses it being added later.
CREATED_MARK = "tugboat.dev/created-by-operator"


def build_created_namespace(namespace: str) -> dict:
    """What the operator creates for a Tenant: a bare Namespace with the creation mark."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "annotations": {CREATED_MARK: "true"}}}


def build_bare_namespace(namespace: str) -> dict:
    """A Namespace with nothing of ours: created, it holds no field of ours that a later apply could
    not take back; applied, it drops the labels our field manager set (the namespace stays)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}


def build_resource_quota(namespace: str, spec: TenantSpec, ctx: TenantContext) -> dict:
    index = spec.namespaces.index(namespace)
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(OBJECT_NAME, namespace, ctx),
            "spec": {"hard": quota_share(spec.quota, len(spec.namespaces), index)}}


def build_limit_range(namespace: str, ctx: TenantContext) -> dict:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta(OBJECT_NAME, namespace, ctx),
            "spec": {"limits": [{"type": "Container", "default": dict(DEFAULT_LIMIT),
                                 "defaultRequest": dict(DEFAULT_REQUEST)}]}}


def from_namespaces(*names: str) -> list[dict]:
    """NetworkPolicy peers: every pod of the named namespaces (the label the API server sets)."""
    return [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}} for n in names]


def build_default_deny(namespace: str, ctx: TenantContext) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta(DEFAULT_DENY, namespace, ctx),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": from_namespaces(ctx.gateway_namespace, ctx.monitoring_namespace)}]},
    }


def build_tenant_cluster_role() -> dict:
    """What a tenant's groups may do in each of its namespaces (bound there, never cluster-wide)."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": TENANT_CLUSTER_ROLE, "labels": managed_labels()},
            "rules": [dict(r) for r in ROLE_RULES]}


def build_role_binding(namespace: str, spec: TenantSpec, ctx: TenantContext) -> dict:
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                for g in sorted(spec.groups)]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _meta(OBJECT_NAME, namespace, ctx),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": TENANT_CLUSTER_ROLE},
            "subjects": subjects}


def build_tenant_objects(spec: TenantSpec, ctx: TenantContext) -> tuple[dict, ...]:
    """Every namespace's objects, the Namespace first (the others cannot exist before it)."""
    out: list[dict] = []
    for ns in spec.namespaces:
        out += [build_namespace(ns, spec, ctx), build_resource_quota(ns, spec, ctx),
                build_limit_range(ns, ctx), build_default_deny(ns, ctx),
                build_role_binding(ns, spec, ctx)]
    return tuple(out)


def owned_object_keys(namespace: str) -> tuple[tuple[str, str, str, str], ...]:
    """(apiVersion, kind, name, namespace) of what a Tenant owns in one namespace (for releasing it)."""
    return (("v1", "ResourceQuota", OBJECT_NAME, namespace), ("v1", "LimitRange", OBJECT_NAME, namespace),
            ("networking.k8s.io/v1", "NetworkPolicy", DEFAULT_DENY, namespace),
            ("rbac.authorization.k8s.io/v1", "RoleBinding", OBJECT_NAME, namespace))
