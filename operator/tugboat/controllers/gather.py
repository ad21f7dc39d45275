"""Reads shared by several kinds' gather steps."""

from __future__ import annotations

from ..api.base import API_VERSION
from ..api.kinds import TENANT
from ..kube.client import Kube
from ..reconcile.outcome import parse_spec
from ..reconcile.tenancy import TenantView
from ..reconcile.tenant import claim_key
from .indexes import NAMESPACES, lookup


def tenant_view(obj: dict) -> TenantView | None:
    spec, _ = parse_spec(TENANT.spec, obj.get("spec") or {})
    return TenantView(obj["metadata"]["name"], spec) if spec is not None else None


def tenant_named(kube: Kube, name: str | None) -> TenantView | None:
    if not name:
        return None
    obj = kube.get_or_none(API_VERSION, TENANT.kind, name)
    return tenant_view(obj) if obj else None


def tenant_of_namespace(kube: Kube, namespace: str) -> TenantView | None:
    """The Tenant holding `namespace` when several list it (the others' claims are refused by
    the Tenant reconcile): the one that set it up, else the oldest (tenant.claim_key)."""
    owners = lookup(kube, TENANT.kind, NAMESPACES, namespace)
    owners.sort(key=lambda t: claim_key(t, namespace))
    return next((v for v in map(tenant_view, owners) if v is not None), None)
