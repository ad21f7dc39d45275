"""The outcome of one guardrail check, shared by every guardrail module.

A verdict only describes a decision (and the HTTP answer a denial maps to); it must not perform
I/O, count metrics or write the audit log: the request flow does that once per request.
"""

from __future__ import annotations

from dataclasses import dataclass

ALLOW = "allow"
DENY = "deny"


@dataclass(frozen=True)
class Verdict:
    """One guardrail's decision; `status` is the HTTP code a denial answers with."""

    guardrail: str
    decision: str = ALLOW
    status: int = 200
    reason: str = ""
    message: str = ""
    retry_after: int | None = None

    @property
    def denied(self) -> bool:
        return self.decision == DENY


def allow(guardrail: str) -> Verdict:
    return Verdict(guardrail=guardrail)


def deny(guardrail: str, status: int, reason: str, message: str,
         retry_after: int | None = None) -> Verdict:
    return Verdict(guardrail=guardrail, decision=DENY, status=status, reason=reason,
                   message=message, retry_after=retry_after)
