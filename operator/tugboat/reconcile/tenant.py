"""Tenant: validity (no reserved namespace, none claimed twice), which absent namespaces to create,
the objects of each of its namespaces, the release of namespaces it no longer lists, and which
namespaces its deletion may remove. Pure.

A namespace another Tenant lists is never released nor deleted by this one: both share the
objects' fixed names and our field manager, so releasing would strip the other tenant's setup.

Only a namespace the operator itself created for the Tenant is ever deleted with it: the create's
201 is recorded with the namespace's uid in status.createdNamespaces, and deletion removes only a
namespace still listed, recorded, and of the recorded uid. Labels prove nothing (we write them on
adopted namespaces too). When the record is missing (status lost, or the operator stopped between
the create and the status write) the namespace counts as adopted and is kept: leaking a namespace,
which the kept-Event names, is preferred to deleting one we cannot prove is the tenant's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from ..api.base import API_VERSION
from ..api.kinds import TENANT
from ..api.tenant import CreatedNamespace, DeletionPolicy, TenantSpec, TenantStatus
from ..builders.tenant import (
    TenantContext,
    build_bare_namespace,
    build_tenant_objects,
    owned_object_keys,
)
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .validity import validate

# Never a tenant's, whatever the operator's flags say: the cluster's own namespaces.
ALWAYS_RESERVED = ("default", "kube-*")


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
    reserved: tuple[str, ...] = ALWAYS_RESERVED  # names or shell-style patterns no Tenant may list
    namespace_uids: Mapping[str, str] = field(default_factory=dict)  # listed namespaces that exist


def reserved_by(namespace: str, patterns: tuple[str, ...]) -> str | None:
    """The first reserved pattern `namespace` matches, or None."""
    return next((p for p in patterns if fnmatchcase(namespace, p)), None)


def _unreserved(observed: Observed):
    def check(spec: TenantSpec):
        hits = [(ns, reserved_by(ns, observed.reserved)) for ns in spec.namespaces]
        hits = [(ns, p) for ns, p in hits if p is not None]
        if hits:
            names = ", ".join(ns if ns == p else f"{ns} (as {p})" for ns, p in hits)
            return Reason.NAMESPACE_RESERVED, f"spec.namespaces: reserved for the platform: {names}"
        return None
    return check


def _valid_spec(observed: Observed, now: datetime):
    """(spec, status, None) when the Tenant may be set up, else (None, status, the Invalid outcome)."""
    return validate(observed.meta, TENANT.spec, observed.spec, observed.status,
                    [_unreserved(observed), _unclaimed(observed)], now)


def namespaces_to_create(observed: Observed, now: datetime) -> tuple[str, ...]:
    """Listed namespaces that do not exist, of a Tenant that may be set up: the operator creates
    them itself, so that the API server's answer (201, not 409) tells they are the tenant's own."""
    spec, _, stop = _valid_spec(observed, now)
    if stop is not None:
        return ()
    return tuple(ns for ns in spec.namespaces if ns not in observed.namespace_uids)


def record_created(status: TenantStatus, name: str, uid: str) -> TenantStatus:
    """The status after the API server created namespace `name` (uid `uid`) for this Tenant."""
    kept = [c for c in status.created_namespaces if c.name != name]
    return status.model_copy(update={"created_namespaces": [*kept, CreatedNamespace(name=name, uid=uid)]})


def _still_created(observed: Observed, spec: TenantSpec) -> list[CreatedNamespace]:
    """Recorded namespaces still listed and still the ones created (a namespace deleted and made
    again by someone else has a new uid: it is adopted now, not ours)."""
    return [c for c in observed.status.created_namespaces
            if c.name in spec.namespaces and observed.namespace_uids.get(c.name) == c.uid]


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
    spec, status, stop = _valid_spec(observed, now)
    if stop is not None:
        return stop
    released = released_namespaces(observed, spec)
    children = build_tenant_objects(spec, _context(observed))
    children += tuple(build_bare_namespace(ns) for ns in released)
    deletions = tuple(key for ns in released for key in owned_object_keys(ns))
    created = _still_created(observed, spec)
    status = set_conditions(status, now, meta.generation,
                            ("Ready", True, Reason.RECONCILED,
                             f"namespaces {', '.join(spec.namespaces)} set up: labels, quota, "
                             "limits, default-deny network policy, RBAC for "
                             f"{', '.join(spec.groups) or 'no groups'}"))
    status = status.model_copy(update={"phase": "Active", "message": None,
                                       "namespaces": list(spec.namespaces),
                                       "created_namespaces": created,
                                       "agent_deployments": observed.agent_deployments})
    return Outcome(status=status, children=children, deletions=deletions,
                   events=phase_event(old, status, Reason.RECONCILED, "tenant admitted"))


@dataclass(frozen=True)
class Kept:
    namespace: str
    why: str
    release: bool = False  # this tenant set it up: drop our labels from it (its objects are GC'd)


@dataclass(frozen=True)
class DeletionPlan:
    delete: tuple[CreatedNamespace, ...] = ()  # deleted with a uid precondition
    keep: tuple[Kept, ...] = ()


def _keep_why(ns: str, uid: str, status: TenantStatus, reserved: tuple[str, ...],
              listed_by_others: frozenset[str]) -> Kept | None:
    """Why a deleted Tenant's listed namespace must stay, or None when it is the tenant's own."""
    set_up = ns in status.namespaces
    recorded = next((c.uid for c in status.created_namespaces if c.name == ns), None)
    if (pattern := reserved_by(ns, reserved)) is not None:
        return Kept(ns, f"reserved for the platform ({pattern})")
    if ns in listed_by_others:
        return Kept(ns, "another Tenant lists it")
    if recorded is None:
        return Kept(ns, "it existed before this Tenant listed it (adopted), or its creation was "
                        "never recorded; only namespaces the operator created are deleted", set_up)
    if recorded != uid:
        return Kept(ns, "it was deleted and created again since the operator created it", set_up)
    return None


def plan_deletion(spec: dict, status: TenantStatus, namespace_uids: Mapping[str, str],
                  reserved: tuple[str, ...] = ALWAYS_RESERVED,
                  listed_by_others: frozenset[str] = frozenset()) -> DeletionPlan:
    """Namespaces a deleted Tenant takes with it: only with deletionPolicy Delete, and only those
    it still lists that the operator created for it (status.createdNamespaces, same uid), are not
    reserved and no other Tenant lists. `namespace_uids`: the listed namespaces that exist."""
    listed = [ns for ns in spec.get("namespaces") or () if ns in namespace_uids]  # others are gone
    if spec.get("deletionPolicy") != DeletionPolicy.DELETE:
        return DeletionPlan(keep=tuple(Kept(ns, "deletionPolicy is Retain") for ns in listed))
    delete, keep = [], []
    for ns in listed:
        kept = _keep_why(ns, namespace_uids[ns], status, reserved, listed_by_others)
        if kept is None:
            delete.append(CreatedNamespace(name=ns, uid=namespace_uids[ns]))
        else:
            keep.append(kept)
    return DeletionPlan(delete=tuple(delete), keep=tuple(keep))
