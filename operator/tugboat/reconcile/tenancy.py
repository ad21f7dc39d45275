"""Semantic checks that need the owning Tenant: what the schema alone cannot see. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from ..api.tenant import TenantSpec
from ..reasons import Reason


@dataclass(frozen=True)
class TenantView:
    name: str
    spec: TenantSpec


def require_tenant(tenant: TenantView | None, namespace: str, required: bool):
    """A namespace served by no Tenant is fine for platform objects, fatal for tenant ones."""
    def check(_spec):
        if tenant is None and required:
            return (Reason.NAMESPACE_NOT_IN_TENANT,
                    f"namespace {namespace} belongs to no Tenant; ask the platform team to add it")
        return None
    return check


def named_tenant(tenant_name: str | None, tenant: TenantView | None, namespace: str):
    def check(_spec):
        if tenant_name is None:
            return None
        if tenant is None or tenant.name != tenant_name:
            return Reason.TENANT_NOT_FOUND, f"spec.tenant: Tenant {tenant_name} not found"
        if namespace not in tenant.spec.namespaces:
            return (Reason.NAMESPACE_NOT_IN_TENANT,
                    f"spec.tenant: namespace {namespace} is not one of Tenant {tenant_name}'s")
        return None
    return check


def node_pool_allowed(tenant: TenantView | None, pool: str, field: str):
    def check(_spec):
        if tenant is not None and pool not in tenant.spec.allowed_node_pools:
            allowed = ", ".join(tenant.spec.allowed_node_pools) or "none"
            return (Reason.NODE_POOL_NOT_ALLOWED,
                    f"{field}: node pool {pool} is not allowed for Tenant {tenant.name} "
                    f"(allowed: {allowed})")
        return None
    return check


def model_line_allowed(tenant: TenantView | None, line: str):
    def check(_spec):
        if tenant is not None and line not in tenant.spec.allowed_model_lines:
            allowed = ", ".join(tenant.spec.allowed_model_lines) or "none"
            return (Reason.MODEL_LINE_NOT_ALLOWED,
                    f"spec.modelLine: {line} is not allowed for Tenant {tenant.name} "
                    f"(allowed: {allowed})")
        return None
    return check
