"""Caller access guardrails: who is calling (bearer key), permission level and the tool allowlist.

Decides from the request's key, requested level and tool list whether this deployment may serve
the caller. A deployment serves one tenant: no key or an unknown one is a 401, another tenant's
key a 403. The level asked for (X-Permission-Level, default ReadOnly) must fit both the key's
level and the deployment's maximum. Tools are never executed here: only their names are checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from .caller_keys import ApiKey, ApiKeys, bearer_token, key_digest, key_tenant
from .guardrail_config import PERMISSION_LEVELS
from .verdict import Verdict, allow, deny

TENANT = "tenant"
PERMISSION = "permission"
TOOLS = "tools"


def identify(authorization: str | None, keys: ApiKeys, tenant: str) -> tuple[Verdict, ApiKey | None]:
    token = bearer_token(authorization)
    if token is None:
        return deny(TENANT, 401, "MissingApiKey", "send Authorization: Bearer <API key>"), None
    named = key_tenant(token)
    if named is not None and named != tenant:
        return deny(TENANT, 403, "TenantMismatch",
                    f"the API key is tenant {named!r}'s, not this deployment's tenant {tenant!r}"), None
    key = keys.by_digest.get(key_digest(token)) if named == tenant else None
    if key is None:
        why = f" ({keys.missing})" if keys.missing else ""
        return deny(TENANT, 401, "UnknownApiKey", f"the API key is not one of tenant {tenant!r}'s{why}"), None
    return allow(TENANT), key


def check_permission(requested: str, key: ApiKey, maximum: str) -> Verdict:
    """`requested` must already be a valid level (the request parser checks the header)."""
    asked = PERMISSION_LEVELS.index(requested)
    if asked > PERMISSION_LEVELS.index(key.permission_level):
        return deny(PERMISSION, 403, "PermissionDenied",
                    f"X-Permission-Level {requested} exceeds API key {key.name!r}'s level "
                    f"{key.permission_level}")
    if asked > PERMISSION_LEVELS.index(maximum):
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
