"""Caller access guardrails: tenant scope, permission level and the tool allowlist.

Decides from the request's headers and tool list whether this deployment may serve the caller.
A deployment serves one tenant at one maximum permission level; asking for another tenant or a
higher level is a 403. Tools are never executed here: only their names are checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from .guardrail_config import PERMISSION_LEVELS
from .verdict import Verdict, allow, deny

TENANT = "tenant"
PERMISSION = "permission"
TOOLS = "tools"


def check_tenant(request_tenant: str, deployment_tenant: str) -> Verdict:
    if request_tenant != deployment_tenant:
        return deny(TENANT, 403, "TenantMismatch",
                    f"X-Tenant {request_tenant!r} is not this deployment's tenant {deployment_tenant!r}")
    return allow(TENANT)


def check_permission(requested: str, maximum: str) -> Verdict:
    """`requested` must already be a valid level (the request parser checks the header)."""
    if PERMISSION_LEVELS.index(requested) > PERMISSION_LEVELS.index(maximum):
        return deny(PERMISSION, 403, "PermissionDenied",
                    f"X-Permission-Level {requested} exceeds this deployment's maximum {maximum}")
    return allow(PERMISSION)


def check_tools(requested: Iterable[str], allowed: frozenset[str]) -> Verdict:
    refused = sorted(set(requested) - allowed)
    if refused:
        listed = ", ".join(sorted(allowed)) or "none"
        return deny(TOOLS, 403, "ToolNotAllowed",
                    f"tool {refused[0]!r} is not allowed (allowed: {listed})")
    return allow(TOOLS)
