"""Dispatch per kind: observe (I/O) -> decide (pure) -> apply. Called by the kopf handlers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE, TENANT, TRAINING_RUN, Kind
from ..kube.client import Kube
from ..reconcile import agent_deployment, model_release, tenant, training_run
from ..reconcile.outcome import Outcome
from . import agent_deployment as agent_deployment_io
from . import model_release as model_release_io
from . import tenant as tenant_io
from . import training_run as training_run_io
from .engine import apply_outcome
from .metrics_record import RECORDER
from .settings import Settings

_PLAN: dict[str, tuple[Callable, Callable[..., Outcome]]] = {
    TENANT.kind: (tenant_io.observe, tenant.decide),
    TRAINING_RUN.kind: (training_run_io.observe, training_run.decide),
    MODEL_RELEASE.kind: (model_release_io.observe, model_release.decide),
    AGENT_DEPLOYMENT.kind: (agent_deployment_io.observe, agent_deployment.decide),
}

_ACT: dict[str, Callable[[Outcome, Settings], None]] = {MODEL_RELEASE.kind: model_release_io.act}

# Writes whose answer is itself an observation, made before the decision: only the API server's
# 201 tells a namespace the operator created for a Tenant from one it adopts.
_BEFORE_DECIDE: dict[str, Callable] = {TENANT.kind: tenant_io.create_namespaces}


def reconcile(kube: Kube, kind: Kind, name: str, namespace: str | None,
              settings: Settings, now: datetime | None = None) -> Outcome | None:
    """Level-triggered: read the object fresh, decide, converge. Returns None if it is gone."""
    obj = kube.get_or_none(API_VERSION, kind.kind, name, namespace)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        RECORDER.forget(kind, name, namespace)
        return None
    observe, decide = _PLAN[kind.kind]
    now = now or datetime.now(UTC)
    observed = observe(kube, obj, settings)
    if kind.kind in _BEFORE_DECIDE:
        observed = _BEFORE_DECIDE[kind.kind](kube, obj, observed, now)
    outcome = decide(observed, now)
    apply_outcome(kube, kind, obj, outcome)
    RECORDER.record(kind, obj, outcome)
    if outcome.actions:
        _ACT[kind.kind](outcome, settings)
    return outcome
