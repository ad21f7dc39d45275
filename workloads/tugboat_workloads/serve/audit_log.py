"""Audit log: one JSON line per generate request.

Decides the record's fields: request id, tenant, cost center (the Tenant's, never the caller's
say), the name of the API key that identified the caller, the prompt's HMAC-SHA256 under the
tenant's audit key and that key's id (never the prompt itself, nor a plain hash a guesser could
match: see audit_key), decision, guardrail and reason, HTTP status and tokens delivered. Writing is
a thin append to a file (or stdout when no path is given), flushed per line so a crash loses
nothing already answered.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

from .audit_key import AuditKey


def build_audit_record(*, request_id: str, tenant: str, cost_center: str | None,
                       caller: str | None, prompt: str | None, key: AuditKey, decision: str,
                       guardrail: str | None, reason: str, status: int, tokens: int,
                       model: str | None, release: str, track: str, timestamp: float) -> dict:
    """Pure: the audit line for one request. `prompt` is digested here and goes no further."""
    return {
        "time": round(timestamp, 3),
        "requestId": request_id,
        "tenant": tenant,
        "costCenter": cost_center,
        "caller": caller,
        "promptHmacSha256": None if prompt is None else key.digest(prompt),
        "auditKeyId": key.key_id,
        "decision": decision,
        "guardrail": guardrail,
        "reason": reason,
        "status": status,
        "tokens": tokens,
        "model": model,
        "release": release,
        "track": track,
    }


class AuditLog:
    """Appends audit records as JSON lines."""

    def __init__(self, path: str | None):
        self._stream: IO[str] = (sys.stdout if path is None
                                 else Path(path).open("a", encoding="utf-8"))
        self._owned = path is not None

    def write(self, record: dict) -> None:
        self._stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
