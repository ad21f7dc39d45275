"""The audit log's HMAC key: a tenant's key from a mounted Secret file, or a per-process one.

Decides where the key comes from, its minimum size and its public id. A bare SHA-256 of a prompt
is reversed by hashing candidates (this task's prompts are a few small integers: a table holds
them all), so audit lines carry HMAC-SHA256(key, prompt) under a per-tenant key. Without a key
file (no flag, or the optional Secret is not there yet) the process draws a random key: digests
still reveal nothing, but match only within this process, not across replicas or restarts; the
log and the tugboat_audit_key_ephemeral gauge say so. A key file that exists but cannot be read
or is shorter than MIN_KEY_BYTES is a configuration error: the server exits 2 rather than
silently auditing under a weak key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

MIN_KEY_BYTES = 32


class AuditKeyError(ValueError):
    pass


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = field(repr=False)
    ephemeral: bool

    @property
    def key_id(self) -> str:
        """Names the key in each audit line (which key to verify a digest with), revealing nothing."""
        return hmac.new(self.secret, b"tugboat audit key id", hashlib.sha256).hexdigest()[:16]

    def digest(self, prompt: str) -> str:
        return hmac.new(self.secret, prompt.encode("utf-8"), hashlib.sha256).hexdigest()


def ephemeral_key() -> AuditKey:
    return AuditKey(secrets.token_bytes(MIN_KEY_BYTES), ephemeral=True)


def load_audit_key(path: str | None) -> AuditKey:
    if path is None or not Path(path).exists():
        return ephemeral_key()
    try:
        # A Secret written from a file often ends in a newline that is no part of the key.
        secret = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as err:
        raise AuditKeyError(f"cannot read audit key {path}: {err.strerror or err}") from err
    if len(secret) < MIN_KEY_BYTES:
        raise AuditKeyError(f"audit key {path} has {len(secret)} bytes, at least {MIN_KEY_BYTES} "
                            "are needed (e.g. 64 hex characters from a random source)")
    return AuditKey(secret, ephemeral=False)
