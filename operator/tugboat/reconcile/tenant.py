"""Tenant: validity (no namespace claimed twice), the objects of each of its namespaces, the
release of namespaces it no longer lists, and which namespaces its deletion may remove. Pure.

A namespace another Tenant lists is never released nor deleted by this one: both share the
objects' fixed names and our field manager, so releasing would strip the other tenant's setup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ..api.base import API_VERSION
from ..api.kinds import TENANT
from ..api.tenant import DeletionPolicy, TenantSpec, TenantStatus
from ..builders.tenant import (
    TENANT_LABEL,
    TenantContext,
    build_released_namespace,
    build_tenant_objects,
    label_value,
    owned_object_keys,
)
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .validity import validate


def claim_key(tenant: dict, namespace: str) -> tuple[bool, str, str]:
    """Orders Tenants listing the same namespace; the smallest holds it. The one that already set
    it up (it is in its status) wins, else the older (creationTimestamp, then name): a newcomer
    never takes over a namespace, even one created in the same second as the incumbent."""
    meta = tenant["metadata"]
    held = namespace in ((tenant.get("status") or {}).get("namespaces") or [])
    return (not held, meta.get("creationTimestamp") or "", meta["name"])


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: TenantStatus
    claims: dict[str, str]  # namespace -> the other Tenant holding it (see claim_key)
    listed_by_others: frozenset[str] = frozenset()  # namespaces any other Tenant lists
    agent_deployments: int = 0  # AgentDeployments in this tenant's namespaces
    gateway_namespace: str = "tugboat-gateway"
    monitoring_namespace: str = "tugboat-system"


def _unclaimed(observed: Observed):
    def check(spec: TenantSpec):
        taken = sorted(ns for ns in spec.namespaces if ns in observed.claims)
        if taken:
            owners = ", ".join(f"{ns} (tenant {observed.claims[ns]})" for ns in taken)
            return Reason.NAMESPACE_CLAIMED, f"spec.namespaces: already claimed: {owners}"
        return None
    return check


def _context(observed: Observed) -> TenantContext:
    owner = {"apiVersion": API_VERSION, "kind": TENANT.kind,
             "metadata": {"name": observed.meta.name, "uid": observed.meta.uid}}
    return TenantContext(owner, observed.gateway_namespace, observed.monitoring_namespace)


def released_namespaces(observed: Observed, spec: TenantSpec) -> list[str]:
    """Namespaces this tenant set up before (status) but no longer lists, and nobody else does."""
    return sorted(ns for ns in observed.status.namespaces
                  if ns not in spec.namespaces and ns not in observed.listed_by_others)


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old = observed.meta, observed.status
    spec, status, stop = validate(meta, TENANT.spec, observed.spec, old, [_unclaimed(observed)], now)
    if stop is not None:
        return stop
    released = released_namespaces(observed, spec)
    children = build_tenant_objects(spec, _context(observed))
    children += tuple(build_released_namespace(ns) for ns in released)
    deletions = tuple(key for ns in released for key in owned_object_keys(ns))
    status = set_conditions(status, now, meta.generation,
                            ("Ready", True, Reason.RECONCILED,
                             f"namespaces {', '.join(spec.namespaces)} set up: labels, quota, "
                             "limits, default-deny network policy, RBAC for "
                             f"{', '.join(spec.groups) or 'no groups'}"))
    status = status.model_copy(update={"phase": "Active", "message": None,
                                       "namespaces": list(spec.namespaces),
                                       "agent_deployments": observed.agent_deployments})
    return Outcome(status=status, children=children, deletions=deletions,
                   events=phase_event(old, status, Reason.RECONCILED, "tenant admitted"))


@dataclass(frozen=True)
class DeletionPlan:
    delete: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()  # listed, but not this tenant's to delete


def plan_deletion(name: str, spec: dict, namespace_labels: Mapping[str, dict | None]) -> DeletionPlan:
    """Namespaces a deleted Tenant takes with it: only with deletionPolicy Delete, and only those
    labelled as this tenant's (a namespace it lost to an older claim is someone else's data)."""
    if spec.get("deletionPolicy") != DeletionPolicy.DELETE:
        return DeletionPlan(keep=tuple(spec.get("namespaces") or ()))
    mine, other = [], []
    for ns in spec.get("namespaces") or ():
        labels = namespace_labels.get(ns)
        if labels is None:
            continue  # already gone
        (mine if labels.get(TENANT_LABEL) == label_value(name) else other).append(ns)
    return DeletionPlan(delete=tuple(mine), keep=tuple(other))
