"""Pure helpers for status.conditions by the Kubernetes API conventions.

lastTransitionTime moves only when a condition's status flips; reason, message and
observedGeneration are refreshed in place. No I/O, no clock: `now` is passed in.
"""

from __future__ import annotations

from datetime import datetime

from .api.base import Condition, ConditionStatus


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Return a new list with the condition of `type_` set; other conditions keep their order."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    old = find(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(type=type_, status=status, reason=str(reason), message=message,
                    observed_generation=generation, last_transition_time=since)
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    c = find(conditions, type_)
    return c is not None and c.status == ConditionStatus.TRUE
