"""Object factories for the rollout tests: specs, targets and observations, short to write."""

from __future__ import annotations

from datetime import datetime, timedelta

from tugboat.api.model_release import AnalysisCheck, RolloutSpec
from tugboat.rollout.inputs import Observation, Target

ERR = AnalysisCheck(name="error-rate", metric="ErrorRate", threshold=0.05, interval="10s", count=2,
                    min_requests=10)


def spec(*steps: dict, checks: tuple[AnalysisCheck, ...] = (ERR,)) -> RolloutSpec:
    steps = steps or ({"weight": 10, "pause": {"duration": "30s"}}, {"weight": 50})
    return RolloutSpec.model_validate({"steps": list(steps),
                                       "analysis": {"checks": [c.wire() for c in checks]}})


def target(name: str = "agent", namespace: str = "team-a", wave: int = 0, cap: int = 100,
           stable: str | None = "v1") -> Target:
    return Target(namespace=namespace, name=name, tenant=namespace, wave=wave, max_weight=cap,
                  stable_release=stable, traffic="Gateway")


def obs(t: Target, at: datetime, value: float | None = 0.01, requests: float | None = 100.0,
        check: str = "error-rate", **kw) -> Observation:
    return Observation(namespace=t.namespace, name=t.name, check=check, at=at,
                       query='sum(rate(tugboat_requests_total{code=~"5.."}[1m]))', value=value,
                       requests=requests, **kw)


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
