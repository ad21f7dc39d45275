"""One `reconcile_<kind>` per kind: gather -> decide -> apply. Called by the kopf handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE, TENANT, TRAINING_RUN, Kind
from ..kube.client import Kube
from ..reconcile import agent_deployment, model_release, tenant, training_run
from ..reconcile.outcome import Meta, Outcome
from .engine import apply_outcome, current_status
from .gather import tenant_named, tenant_of_namespace, tenants


@dataclass(frozen=True)
class Settings:
    """Operator configuration that decisions depend on (passed explicitly, never read from env)."""

    sigstore_available: bool = False


def _observe_tenant(kube: Kube, obj: dict, _s: Settings):
    me = obj["metadata"]
    mine = (me.get("creationTimestamp") or "", me["name"])
    claims: dict[str, str] = {}
    for other in tenants(kube):
        om = other["metadata"]
        if om["name"] != me["name"] and (om.get("creationTimestamp") or "", om["name"]) < mine:
            for ns in (other.get("spec") or {}).get("namespaces", []):
                claims.setdefault(ns, om["name"])
    return tenant.Observed(Meta.of(obj), obj.get("spec") or {}, current_status(TENANT, obj), claims)


def _observe_training_run(kube: Kube, obj: dict, _s: Settings):
    name = (obj.get("spec") or {}).get("tenant")
    return training_run.Observed(Meta.of(obj), obj.get("spec") or {},
                                 current_status(TRAINING_RUN, obj), tenant_named(kube, name))


def _observe_model_release(kube: Kube, obj: dict, s: Settings):
    return model_release.Observed(Meta.of(obj), obj.get("spec") or {},
                                  current_status(MODEL_RELEASE, obj), s.sigstore_available)


def _observe_agent_deployment(kube: Kube, obj: dict, _s: Settings):
    ns = obj["metadata"]["namespace"]
    return agent_deployment.Observed(Meta.of(obj), obj.get("spec") or {},
                                     current_status(AGENT_DEPLOYMENT, obj),
                                     tenant_of_namespace(kube, ns))


_PLAN: dict[str, tuple[Callable, Callable[..., Outcome]]] = {
    TENANT.kind: (_observe_tenant, tenant.decide),
    TRAINING_RUN.kind: (_observe_training_run, training_run.decide),
    MODEL_RELEASE.kind: (_observe_model_release, model_release.decide),
    AGENT_DEPLOYMENT.kind: (_observe_agent_deployment, agent_deployment.decide),
}


def reconcile(kube: Kube, kind: Kind, name: str, namespace: str | None,
              settings: Settings, now: datetime | None = None) -> Outcome | None:
    """Level-triggered: read the object fresh, decide, converge. Returns None if it is gone."""
    obj = kube.get_or_none(API_VERSION, kind.kind, name, namespace)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    observe, decide = _PLAN[kind.kind]
    outcome = decide(observe(kube, obj, settings), now or datetime.now(UTC))
    apply_outcome(kube, kind, obj, outcome)
    return outcome
