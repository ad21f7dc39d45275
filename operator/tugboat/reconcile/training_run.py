"""TrainingRun: validity, then (for now) acceptance. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.kinds import TRAINING_RUN
from ..api.training_run import TrainingRunStatus
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .tenancy import TenantView, named_tenant, node_pool_allowed
from .validity import validate


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: TrainingRunStatus
    tenant: TenantView | None  # the Tenant named by spec.tenant, if it exists


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old = observed.meta, observed.status
    raw_tenant = (observed.spec or {}).get("tenant")
    pool = ((observed.spec or {}).get("resources") or {}).get("nodePool", "gpu")
    checks = [named_tenant(raw_tenant, observed.tenant, meta.namespace),
              node_pool_allowed(observed.tenant if raw_tenant else None, pool,
                                "spec.resources.nodePool")]
    spec, status, stop = validate(meta, TRAINING_RUN.spec, observed.spec, old, checks, now)
    if stop is not None:
        return stop
    status = set_conditions(status, now, meta.generation,
                            ("Ready", False, Reason.ACCEPTED, "spec is valid; training not started"))
    status = status.model_copy(update={"phase": "Pending", "message": None})
    return Outcome(status=status, events=phase_event(old, status, Reason.ACCEPTED, "spec accepted"))
