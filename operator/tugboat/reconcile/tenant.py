"""Tenant: validity (no namespace claimed twice) and readiness. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.kinds import TENANT
from ..api.tenant import TenantSpec, TenantStatus
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .validity import validate


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: TenantStatus
    claims: dict[str, str]  # namespace -> other tenant that lists it (oldest claim wins)


def _unclaimed(observed: Observed):
    def check(spec: TenantSpec):
        taken = sorted(ns for ns in spec.namespaces if ns in observed.claims)
        if taken:
            owners = ", ".join(f"{ns} (tenant {observed.claims[ns]})" for ns in taken)
            return Reason.NAMESPACE_CLAIMED, f"spec.namespaces: already claimed: {owners}"
        return None
    return check


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old = observed.meta, observed.status
    spec, status, stop = validate(meta, TENANT.spec, observed.spec, old, [_unclaimed(observed)], now)
    if stop is not None:
        return stop
    status = set_conditions(status, now, meta.generation,
                            ("Ready", True, Reason.RECONCILED,
                             f"tenant admitted for namespaces {', '.join(spec.namespaces)}"))
    status = status.model_copy(update={"phase": "Active", "message": None,
                                       "namespaces": list(spec.namespaces)})
    return Outcome(status=status, events=phase_event(old, status, Reason.RECONCILED, "tenant admitted"))
