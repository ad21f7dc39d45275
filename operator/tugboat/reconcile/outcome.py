"""What a pure `decide` returns, and helpers every kind shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from ..api.base import Condition, ConditionStatus, StatusBase
from ..conditions import find, set_condition
from ..reasons import Reason


@dataclass(frozen=True)
class EventIntent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ObjectEvent:
    """An Event for another object than the one reconciled (a release's rollout reaching an
    AgentDeployment in a tenant namespace: the event belongs where that tenant looks)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    event: EventIntent


@dataclass(frozen=True)
class Outcome:
    status: StatusBase
    children: tuple[dict, ...] = ()
    deletions: tuple[tuple[str, str, str, str | None], ...] = ()  # apiVersion, kind, name, ns
    events: tuple[EventIntent, ...] = ()
    object_events: tuple[ObjectEvent, ...] = ()
    requeue_after: float | None = None
    # Side effects outside Kubernetes (e.g. a registry write), carried out by the kind's controller.
    actions: tuple[object, ...] = ()


@dataclass(frozen=True)
class Meta:
    """The parts of an object's metadata that decisions need."""

    name: str
    namespace: str | None
    uid: str
    generation: int

    @classmethod
    def of(cls, obj: dict) -> Meta:
        m = obj["metadata"]
        return cls(m["name"], m.get("namespace"), m.get("uid", ""), int(m.get("generation") or 0))


def parse_spec(model: type[BaseModel], raw: dict) -> tuple[BaseModel | None, str]:
    """Validate a spec the API server accepted; return (spec, '') or (None, readable error)."""
    try:
        return model.model_validate(raw or {}), ""
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            parts.append(f"spec.{path}: {err['msg']}")
        return None, "; ".join(parts)


def phase_event(old: StatusBase, new: StatusBase, reason: str, message: str) -> tuple[EventIntent, ...]:
    """One Event per phase change (Argo's lesson: events and timestamps on transitions only)."""
    if old.phase == new.phase:
        return ()
    kind = "Warning" if new.phase in ("Invalid", "Failed", "RolledBack", "Degraded", "Revoked") else "Normal"
    return (EventIntent(kind, reason, f"{old.phase or 'New'} -> {new.phase}: {message}"),)


def with_validity(status: StatusBase, ok: bool, reason: str, message: str, generation: int,
                  now: datetime) -> StatusBase:
    conds = set_condition(status.conditions, "Valid", ok, reason, message, generation, now)
    return status.model_copy(update={"conditions": conds, "observed_generation": generation})


def set_conditions(status: StatusBase, now: datetime, generation: int,
                   *items: tuple[str, ConditionStatus | bool, str, str]) -> StatusBase:
    conds: list[Condition] = status.conditions
    for type_, state, reason, message in items:
        conds = set_condition(conds, type_, state, reason, message, generation, now)
    return status.model_copy(update={"conditions": conds, "observed_generation": generation})


def invalid(status: StatusBase, reason: Reason, message: str, generation: int, now: datetime,
            ) -> Outcome:
    """Stop at a bad spec: Valid=False, Ready=False, one Warning event, no retries storm."""
    new = set_conditions(status, now, generation,
                         ("Valid", False, reason, message),
                         ("Ready", False, reason, "the spec must be fixed first"))
    new = new.model_copy(update={"phase": "Invalid", "message": message})
    return Outcome(status=new, events=phase_event(status, new, reason, message))


def condition_reason(status: StatusBase, type_: str) -> str | None:
    c = find(status.conditions, type_)
    return c.reason if c else None
