"""Fold judged measurements into each target's per-check counters; find breaches and holds. Pure.

A check counts one measurement per `interval` (an observation older than that since the last
counted one is ignored), so a pass replayed after a restart changes nothing. Passes count only
at the step they were taken in; failures count over the whole rollout; inconclusive results and
query errors count while consecutive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.model_release import (
    AnalysisCheck,
    CheckProgress,
    Measurement,
    TargetPlan,
    TargetState,
    Verdict,
)
from ..reasons import Reason
from .durations import seconds
from .inputs import Observation

MEASURED_STATES = (TargetState.PROGRESSING, TargetState.PAUSED, TargetState.INCONCLUSIVE,
                   TargetState.PROMOTED)


def measuring(plan: TargetPlan) -> bool:
    """The canary of this target takes traffic in a live rollout, so it is analysed."""
    return plan.state in MEASURED_STATES and plan.weight > 0


def next_due(progress: CheckProgress | None, check: AnalysisCheck) -> datetime | None:
    """When this check may be measured next; None: now (never measured)."""
    if progress is None or progress.last is None:
        return None
    return progress.last.time + timedelta(seconds=seconds(check.interval))


def is_due(progress: CheckProgress | None, check: AnalysisCheck, at: datetime) -> bool:
    due = next_due(progress, check)
    return due is None or (at >= due and at > progress.last.time)


def _count(p: CheckProgress, m: Measurement, at_this_step: bool) -> CheckProgress:
    if m.verdict == Verdict.PASS:
        return p.model_copy(update={"passes": p.passes + (1 if at_this_step else 0), "last": m,
                                    "inconclusive": 0, "errors": 0})
    if m.verdict == Verdict.FAIL:
        return p.model_copy(update={"failures": p.failures + 1, "last": m, "inconclusive": 0,
                                    "errors": 0})
    if m.verdict == Verdict.INCONCLUSIVE:
        return p.model_copy(update={"inconclusive": p.inconclusive + 1, "last": m})
    return p.model_copy(update={"errors": p.errors + 1, "last": m})


Measured = list[tuple[Observation, Measurement]]


def record(plan: TargetPlan, checks: tuple[AnalysisCheck, ...], measured: Measured) -> TargetPlan:
    """The plan with the due measurements counted (in time order), checks in spec order."""
    old = {c.name: c for c in plan.checks}
    progress = {c.name: old.get(c.name) or CheckProgress(name=c.name) for c in checks}
    by_name = {c.name: c for c in checks}
    for obs, m in sorted(measured, key=lambda om: om[0].at):
        check = by_name.get(obs.check)
        if check is None or not is_due(progress[check.name], check, obs.at):
            continue
        at_step = plan.step_started_at is not None and obs.at >= plan.step_started_at
        progress[check.name] = _count(progress[check.name], m, at_step)
    return plan.model_copy(update={"checks": list(progress.values())})


def reset_passes(plan: TargetPlan) -> list[CheckProgress]:
    return [c.model_copy(update={"passes": 0}) for c in plan.checks]


@dataclass(frozen=True)
class Finding:
    """A check past one of its limits on one target."""

    reason: Reason  # AnalysisFailed, AnalysisError (both roll back) or AnalysisInconclusive (holds)
    check: AnalysisCheck
    progress: CheckProgress


def breach(plan: TargetPlan, checks: tuple[AnalysisCheck, ...]) -> Finding | None:
    progress = {c.name: c for c in plan.checks}
    for check in checks:
        p = progress.get(check.name)
        if p is None:
            continue
        if p.failures > check.failure_limit:
            return Finding(Reason.ANALYSIS_FAILED, check, p)
        if p.errors > check.error_limit:
            return Finding(Reason.ANALYSIS_ERROR, check, p)
    return None


def holding(plan: TargetPlan, checks: tuple[AnalysisCheck, ...]) -> Finding | None:
    progress = {c.name: c for c in plan.checks}
    for check in checks:
        p = progress.get(check.name)
        if p is not None and p.inconclusive > check.inconclusive_limit:
            return Finding(Reason.ANALYSIS_INCONCLUSIVE, check, p)
    return None


def missing_passes(plan: TargetPlan, checks: tuple[AnalysisCheck, ...]) -> list[str]:
    """Checks that have not yet passed `count` times at the current step."""
    progress = {c.name: c.passes for c in plan.checks}
    return [f"{c.name} {progress.get(c.name, 0)}/{c.count}" for c in checks
            if progress.get(c.name, 0) < c.count]
