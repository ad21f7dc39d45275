"""Audit log: one JSON line per generate request.

Decides the record's fields: request id, tenant, cost center, the SHA-256 of the prompt (never
the prompt itself), decision, guardrail and reason, HTTP status and tokens delivered. Writing is
a thin append to a file (or stdout when no path is given), flushed per line so a crash loses
nothing already answered.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import IO


def prompt_digest(prompt: str | None) -> str | None:
    if prompt is None:
        return None
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def build_audit_record(*, request_id: str, tenant: str, cost_center: str | None,
                       prompt: str | None, decision: str, guardrail: str | None, reason: str,
                       status: int, tokens: int, model: str | None, release: str, track: str,
                       timestamp: float) -> dict:
    """Pure: the audit line for one request. `prompt` is hashed here and goes no further."""
    return {
        "time": round(timestamp, 3),
        "requestId": request_id,
        "tenant": tenant,
        "costCenter": cost_center,
        "promptSha256": prompt_digest(prompt),
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
