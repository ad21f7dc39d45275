"""Bearer API keys: the format of a key, of the keys file, and whom a key identifies.

Keys look like `tbk_<tenant>_<secret>`. Naming the tenant lets a deployment tell another
tenant's key (403) from no key or an unknown one (401) without holding other tenants' hashes.
The keys file (JSON from a Secret in the tenant namespace) lists each key's SHA-256 hex digest,
a name for the audit line and its permission level, never a key: a leaked file grants nothing.
A missing file means no key is valid (fail closed). Must not decide what a level may do:
caller_access does.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .guardrail_config import PERMISSION_LEVELS

KEY_PREFIX = "tbk_"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ApiKeysError(ValueError):
    """The keys file is unreadable or malformed; the message names the field."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    permission_level: str


@dataclass(frozen=True)
class ApiKeys:
    by_digest: Mapping[str, ApiKey] = field(default_factory=dict)
    # Why no key can be valid, when none is provisioned (said in every 401).
    missing: str | None = None


def new_api_key(tenant: str) -> str:
    return f"{KEY_PREFIX}{tenant}_{secrets.token_urlsafe(32)}"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def key_tenant(key: str) -> str | None:
    """The tenant a well-formed key names (tenant names never hold '_'), else None."""
    tenant, sep, secret = key.removeprefix(KEY_PREFIX).partition("_")
    return tenant if key.startswith(KEY_PREFIX) and sep and tenant and secret else None


def load_api_keys(path: str | None) -> ApiKeys:
    if path is None:
        return ApiKeys(missing="the server was started without --api-keys-file")
    if not Path(path).exists():
        return ApiKeys(missing=f"no keys file at {path}: the tenant's API keys Secret does not exist")
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as err:
        raise ApiKeysError(f"cannot read API keys {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise ApiKeysError(f"API keys {path} is not valid JSON: {err}") from err
    return parse_api_keys(raw, path)


def parse_api_keys(raw: Any, source: str) -> ApiKeys:
    if not isinstance(raw, dict) or set(raw) != {"keys"} or not isinstance(raw["keys"], list):
        raise ApiKeysError(f"API keys {source}: must be an object {{\"keys\": [...]}}")
    out: dict[str, ApiKey] = {}
    for i, entry in enumerate(raw["keys"]):
        where = f"API keys {source}: keys[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "sha256", "permissionLevel"}:
            raise ApiKeysError(f"{where}: needs exactly name, sha256 and permissionLevel")
        digest, name, level = entry["sha256"], entry["name"], entry["permissionLevel"]
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise ApiKeysError(f"{where}.sha256: must be 64 lower-case hex digits")
        if not isinstance(name, str) or not name:
            raise ApiKeysError(f"{where}.name: must be a non-empty string")
        if level not in PERMISSION_LEVELS:
            raise ApiKeysError(f"{where}.permissionLevel: must be one of {', '.join(PERMISSION_LEVELS)}")
        out[digest] = ApiKey(name, level)
    return ApiKeys(by_digest=out)


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
