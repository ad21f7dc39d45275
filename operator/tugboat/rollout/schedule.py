"""When to look again, and which measurements are due. Pure.

Waiting is requeueing: the next pass is at the earliest of a timed pause's end and the next
measurement of a check on a canary that takes traffic.
"""

from __future__ import annotations

from datetime import datetime

from ..api.model_release import RolloutPhase, RolloutSpec, RolloutStatus, TargetState
from .analysis import is_due, measuring, next_due
from .decision import DueCheck
from .steps import waiting_for

# No pass follows another sooner than this: a step that may end at once ends on the next pass,
# which gives the serving side a moment to apply the last weight.
MIN_REQUEUE_SECONDS = 1.0
ACTIVE = (TargetState.PROGRESSING, TargetState.PAUSED, TargetState.INCONCLUSIVE)
FINISHED = (None, RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK)
# Prometheus sees the canary's last answers a scrape (or two) after they were served: a rolled-back
# release keeps counting its exposure this long after the breach, so none of them goes uncounted.
SETTLE_SECONDS = 30.0
SETTLE_RECOUNT_SECONDS = 5.0  # how often it recounts meanwhile


def settling(status: RolloutStatus | None, now: datetime) -> bool:
    """A rollback recent enough that its breach exposure may still grow."""
    return (status is not None and status.phase == RolloutPhase.ROLLED_BACK and status.breach is not None
            and (now - status.breach.time).total_seconds() < SETTLE_SECONDS)


def due_checks(spec: RolloutSpec, status: RolloutStatus | None, now: datetime) -> tuple[DueCheck, ...]:
    if status is None or status.phase in FINISHED:
        return ()
    out = []
    for plan in status.targets:
        if not measuring(plan):
            continue
        progress = {c.name: c for c in plan.checks}
        for check in spec.analysis.checks:
            if is_due(progress.get(check.name), check, now):
                out.append(DueCheck(plan.namespace, plan.name, check, plan.stable_release))
    return tuple(out)


def requeue_after(spec: RolloutSpec, status: RolloutStatus, now: datetime) -> float | None:
    if status.phase in FINISHED:
        return None
    times: list[float] = []
    for plan in status.targets:
        if measuring(plan):
            progress = {c.name: c for c in plan.checks}
            for check in spec.analysis.checks:
                due = next_due(progress.get(check.name), check)
                times.append(0.0 if due is None else (due - now).total_seconds())
        if plan.state in ACTIVE and plan.step < len(spec.steps) and not status.paused:
            wait = waiting_for(plan, spec.steps[plan.step], tuple(spec.analysis.checks), now)
            if wait is None or wait.kind == "started":
                times.append(0.0)
            elif wait.until is not None:
                times.append((wait.until - now).total_seconds())
    return max(MIN_REQUEUE_SECONDS, min(times)) if times else None
