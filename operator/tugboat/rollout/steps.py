"""One target's walk through the steps: enter a step, and what keeps it from ending. Pure.

A step ends only on a later pass than the one that entered it, so no pass moves a target by
more than one step (weights never jump) and a replayed pass at the same `now` changes nothing.
The weight of every step is capped by the target's tenant; after the last step the target
serves the release at 100%.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..api.model_release import AnalysisCheck, CanaryStep, TargetPlan, TargetState
from .analysis import missing_passes, reset_passes
from .durations import seconds
from .inputs import Target


def step_weight(step: CanaryStep, target: Target) -> int:
    return min(step.weight, target.max_weight)


def enter(plan: TargetPlan, steps: list[CanaryStep], index: int, target: Target, now: datetime,
          ) -> TargetPlan:
    if index >= len(steps):
        return plan.model_copy(update={
            "state": TargetState.PROMOTED, "step": len(steps), "weight": 100, "step_started_at": now,
            "pause_released": False, "checks": reset_passes(plan), "message": "every step passed"})
    weight = step_weight(steps[index], target)
    return plan.model_copy(update={
        "state": TargetState.PROGRESSING, "step": index, "weight": weight, "step_started_at": now,
        "pause_released": False, "checks": reset_passes(plan),
        "message": f"step {index} of {len(steps)}: weight {weight}%"})


@dataclass(frozen=True)
class Wait:
    # started: entered on this pass; person: only `kubectl tugboat promote` ends it;
    # pause: a timed pause, over at `until`; analysis: checks still need passes.
    kind: Literal["started", "person", "pause", "analysis"]
    message: str
    until: datetime | None = None


def waiting_for(plan: TargetPlan, step: CanaryStep, checks: tuple[AnalysisCheck, ...],
                now: datetime) -> Wait | None:
    """Why the current step cannot end yet, or None: it ends now."""
    started = plan.step_started_at
    if started is None or now <= started:
        return Wait("started", "step just started")
    if step.pause is not None and not plan.pause_released:
        if step.pause.duration is None:
            return Wait("person", "paused until promoted (kubectl tugboat promote)")
        until = started + timedelta(seconds=seconds(step.pause.duration))
        if now < until:
            left = (until - now).total_seconds()
            return Wait("pause", f"pause {step.pause.duration}: {left:.0f}s left", until)
    if step.analysis:
        missing = missing_passes(plan, checks)
        if missing:
            return Wait("analysis", "analysis: waiting for passes " + ", ".join(missing))
    return None
