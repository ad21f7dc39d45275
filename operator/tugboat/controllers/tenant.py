"""Tenant: gather what the pure decision needs, create the namespaces it lacks (recording those the
API server created for it), and carry out a deletion's namespace cleanup."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, TENANT
from ..builders.tenant import build_bare_namespace, build_created_namespace
from ..kube.client import Kube
from ..kube.errors import Conflict
from ..reasons import Reason
from ..reconcile import tenant
from ..reconcile.outcome import Meta
from .engine import current_status
from .indexes import NAMESPACES, lookup
from .settings import Settings

log = logging.getLogger(__name__)


def reserved_namespaces(s: Settings) -> tuple[str, ...]:
    """Every namespace (or pattern) no Tenant may list: the cluster's, the operator's, the platform's
    (its release namespaces included: a release there reaches every tenant)."""
    return (*tenant.ALWAYS_RESERVED, s.system_namespace, s.gateway_namespace, s.monitoring_namespace,
            *s.release_namespaces, *s.reserved_namespaces)


def _rivals(kube: Kube, obj: dict, namespaces) -> dict[str, list[dict]]:
    """namespace -> the other Tenants listing it (from the namespaces index: a pass reads the
    Tenants it shares a namespace with, not every Tenant of the cluster)."""
    me = obj["metadata"]["name"]
    out = {}
    for ns in namespaces:
        others = [t for t in lookup(kube, TENANT.kind, NAMESPACES, ns) if t["metadata"]["name"] != me]
        if others:
            out[ns] = others
    return out


def _claims(obj: dict, rivals: dict[str, list[dict]]) -> dict[str, str]:
    """namespace -> the other Tenant that holds it (tenant.claim_key decides)."""
    claims: dict[str, str] = {}
    for ns in (obj.get("spec") or {}).get("namespaces", []):
        best = min(rivals.get(ns, ()), key=lambda o, n=ns: tenant.claim_key(o, n), default=None)
        if best is not None and tenant.claim_key(best, ns) < tenant.claim_key(obj, ns):
            claims[ns] = best["metadata"]["name"]
    return claims


def _namespace_uids(kube: Kube, names) -> dict[str, str]:
    uids = {}
    for ns in names:
        obj = kube.get_or_none("v1", "Namespace", ns)
        if obj is not None:
            uids[ns] = obj["metadata"]["uid"]
    return uids


def _mentioned(obj: dict) -> set[str]:
    """The namespaces a Tenant lists or set up before: the only ones its decisions are about."""
    return set((obj.get("spec") or {}).get("namespaces") or []) | set(current_status(TENANT, obj).namespaces)


def observe(kube: Kube, obj: dict, s: Settings) -> tenant.Observed:
    rivals = _rivals(kube, obj, _mentioned(obj))
    claims = _claims(obj, rivals)
    namespaces = (obj.get("spec") or {}).get("namespaces", [])
    count = sum(len(kube.list(API_VERSION, AGENT_DEPLOYMENT.kind, ns)) for ns in namespaces
                if ns not in claims)
    return tenant.Observed(Meta.of(obj), obj.get("spec") or {}, current_status(TENANT, obj), claims,
                           listed_by_others=frozenset(rivals), agent_deployments=count,
                           gateway_namespace=s.gateway_namespace,
                           monitoring_namespace=s.monitoring_namespace,
                           reserved=reserved_namespaces(s),
                           namespace_uids=_namespace_uids(kube, namespaces))


def tenant_reach(obj: dict) -> tuple:
    """What of a Tenant the objects of its namespaces are judged against: its spec (generation)
    and the namespaces it holds (status, which decides a contested one). Its usage counts are not
    in it: a write of those alone re-judges nobody."""
    held = (obj.get("status") or {}).get("namespaces") or []
    return obj["metadata"].get("generation"), tuple(sorted(held))


def create_namespaces(kube: Kube, obj: dict, observed: tenant.Observed, now: datetime) -> tenant.Observed:
    """Create the absent namespaces the pure decision allows, recording each the API server created
    (201) in the Tenant's status at once, so the window in which a crash forgets one is a single
    call. A 409 means someone else created it first: it is adopted, never deleted with the Tenant."""
    name = observed.meta.name
    for ns in tenant.namespaces_to_create(observed, now):
        try:
            made = kube.create(build_created_namespace(ns))
        except Conflict:
            log.info("Tenant %s: namespace %s appeared meanwhile; adopting it", name, ns)
            continue
        uid = made["metadata"]["uid"]
        status = tenant.record_created(observed.status, ns, uid)
        written = kube.patch_status(API_VERSION, TENANT.kind, name, None,
                                    {"createdNamespaces": [c.wire() for c in status.created_namespaces]})
        # This pass's own write: its final status patch is preconditioned on the version it made.
        obj["metadata"]["resourceVersion"] = written["metadata"]["resourceVersion"]
        observed = replace(observed, status=status, namespace_uids={**observed.namespace_uids, ns: uid})
        kube.event(obj, "Normal", Reason.NAMESPACE_CREATED, f"created namespace {ns} for this tenant")
    return observed


def delete_namespaces(kube: Kube, name: str, s: Settings) -> tenant.DeletionPlan | None:
    """A Tenant with deletionPolicy Delete is going: delete the namespaces the operator created for
    it; keep the others, with an Event saying why, dropping our labels from those it set up."""
    obj = kube.get_or_none(API_VERSION, TENANT.kind, name)
    if obj is None:
        return None
    spec = obj.get("spec") or {}
    plan = tenant.plan_deletion(spec, current_status(TENANT, obj),
                                _namespace_uids(kube, spec.get("namespaces") or ()),
                                reserved_namespaces(s), frozenset(_rivals(kube, obj, _mentioned(obj))))
    for ns in plan.delete:
        log.info("Tenant %s deleted with deletionPolicy Delete: deleting namespace %s", name, ns.name)
        # The uid precondition: never a namespace of the same name made since we looked.
        kube.delete("v1", "Namespace", ns.name, uid=ns.uid)
        kube.event(obj, "Normal", Reason.NAMESPACE_DELETED,
                   f"deleted namespace {ns.name}, which the operator created for this tenant")
    for kept in plan.keep:
        log.info("Tenant %s deleted: keeping namespace %s: %s", name, kept.namespace, kept.why)
        if kept.release:
            kube.apply(build_bare_namespace(kept.namespace))
        kube.event(obj, "Normal", Reason.NAMESPACE_KEPT, f"kept namespace {kept.namespace}: {kept.why}")
    return plan
