"""Tenant: gather what the pure decision needs; carry out a deletion's namespace cleanup."""

from __future__ import annotations

import logging

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, TENANT
from ..kube.client import Kube
from ..reconcile import tenant
from ..reconcile.outcome import Meta
from .engine import current_status
from .gather import tenants
from .settings import Settings

log = logging.getLogger(__name__)


def _claims(obj: dict, others: list[dict]) -> dict[str, str]:
    """namespace -> the other Tenant that holds it (tenant.claim_key decides)."""
    claims: dict[str, str] = {}
    for ns in (obj.get("spec") or {}).get("namespaces", []):
        rivals = [o for o in others if ns in (o.get("spec") or {}).get("namespaces", [])]
        best = min(rivals, key=lambda o, n=ns: tenant.claim_key(o, n), default=None)
        if best is not None and tenant.claim_key(best, ns) < tenant.claim_key(obj, ns):
            claims[ns] = best["metadata"]["name"]
    return claims


def observe(kube: Kube, obj: dict, s: Settings) -> tenant.Observed:
    others = [t for t in tenants(kube) if t["metadata"]["name"] != obj["metadata"]["name"]]
    claims = _claims(obj, others)
    listed = {ns for o in others for ns in (o.get("spec") or {}).get("namespaces", [])}
    namespaces = (obj.get("spec") or {}).get("namespaces", [])
    count = sum(len(kube.list(API_VERSION, AGENT_DEPLOYMENT.kind, ns)) for ns in namespaces
                if ns not in claims)
    return tenant.Observed(Meta.of(obj), obj.get("spec") or {}, current_status(TENANT, obj), claims,
                           listed_by_others=frozenset(listed), agent_deployments=count,
                           gateway_namespace=s.gateway_namespace,
                           monitoring_namespace=s.monitoring_namespace)


def delete_namespaces(kube: Kube, name: str, spec: dict) -> tenant.DeletionPlan:
    """A Tenant with deletionPolicy Delete is going: delete the namespaces that are its own."""
    labels = {}
    for ns in spec.get("namespaces") or ():
        obj = kube.get_or_none("v1", "Namespace", ns)
        labels[ns] = None if obj is None else (obj["metadata"].get("labels") or {})
    plan = tenant.plan_deletion(name, spec, labels)
    for ns in plan.delete:
        log.info("Tenant %s deleted with deletionPolicy Delete: deleting namespace %s", name, ns)
        kube.delete("v1", "Namespace", ns)
    for ns in plan.keep:
        log.info("Tenant %s deleted: keeping namespace %s", name, ns)
    return plan
