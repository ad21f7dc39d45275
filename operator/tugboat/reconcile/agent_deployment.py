"""AgentDeployment: validity against the namespace's Tenant, then (for now) acceptance. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.agent_deployment import AgentDeploymentStatus
from ..api.kinds import AGENT_DEPLOYMENT
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .tenancy import TenantView, model_line_allowed, node_pool_allowed, require_tenant
from .validity import validate


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: AgentDeploymentStatus
    tenant: TenantView | None  # the Tenant whose namespaces include this object's


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old, raw = observed.meta, observed.status, observed.spec or {}
    checks = [require_tenant(observed.tenant, meta.namespace, required=True),
              model_line_allowed(observed.tenant, raw.get("modelLine", "")),
              node_pool_allowed(observed.tenant, raw.get("nodePool", "cpu"), "spec.nodePool")]
    spec, status, stop = validate(meta, AGENT_DEPLOYMENT.spec, raw, old, checks, now)
    if stop is not None:
        return stop
    status = set_conditions(status, now, meta.generation,
                            ("Ready", False, Reason.ACCEPTED, "spec is valid; not deployed yet"))
    status = status.model_copy(update={"phase": "Pending", "message": None})
    return Outcome(status=status, events=phase_event(old, status, Reason.ACCEPTED, "spec accepted"))
