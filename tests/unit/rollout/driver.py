"""Run the state machine pass after pass as the controllers would: measure what is due, decide,
wait the requeue time. The measured value comes from a function of (target, time)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from tests.unit.rollout.factories import obs as make_obs
from tugboat.api.model_release import RolloutSpec, RolloutStatus
from tugboat.rollout.decide import decide
from tugboat.rollout.decision import Decision
from tugboat.rollout.inputs import Observation, Target
from tugboat.rollout.schedule import due_checks

Measure = Callable[[Target, str, datetime], dict]


def good(_t: Target, _check: str, _at: datetime) -> dict:
    return {"value": 0.01}


def measure(spec: RolloutSpec, targets: list[Target], status: RolloutStatus | None, now: datetime,
            how: Measure) -> list[Observation]:
    by_key = {t.key: t for t in targets}
    return [make_obs(by_key[(d.namespace, d.name)], now, check=d.check.name,
                     **how(by_key[(d.namespace, d.name)], d.check.name, now))
            for d in due_checks(spec, status, now)]


def drive(spec: RolloutSpec, targets: list[Target], status: RolloutStatus | None, now: datetime,
          how: Measure = good, passes: int = 100, stop: Callable[[Decision], bool] = lambda d: False,
          ) -> tuple[list[Decision], datetime]:
    """Up to `passes` passes; ends early when the rollout is finished, waits for nobody, or `stop`."""
    out: list[Decision] = []
    for _ in range(passes):
        d = decide(spec, targets, status, now, measure(spec, targets, status, now, how), release="v2")
        out.append(d)
        status = d.status
        if stop(d) or d.requeue_after is None:
            break
        now = now + timedelta(seconds=d.requeue_after)
    return out, now
