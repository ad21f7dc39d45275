"""What one pass of the rollout state machine returns. Plain values; the controllers apply them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..api.base import ConditionStatus
from ..api.model_release import AnalysisCheck, Breach, RolloutPhase, RolloutStatus
from ..reasons import Reason
from ..reconcile.outcome import EventIntent


class ConditionType(StrEnum):
    PROGRESSING = "Progressing"
    CANARY_HEALTHY = "CanaryHealthy"
    ROLLED_BACK = "RolledBack"


@dataclass(frozen=True)
class RolloutVerdict:
    """Progressing, Paused(reason), Inconclusive (holding), Promoted or RolledBack(breach);
    phase None: nothing to roll out (no targets)."""

    phase: RolloutPhase | None
    reason: Reason
    message: str
    breach: Breach | None = None


@dataclass(frozen=True)
class TargetEvent:
    """An Event for one AgentDeployment the rollout reaches (the release's own go in `events`)."""

    namespace: str
    name: str
    event: EventIntent


@dataclass(frozen=True)
class DueCheck:
    """A measurement the controller should take before the next pass."""

    namespace: str
    name: str
    check: AnalysisCheck
    stable_release: str | None  # to compare against, for checks with maxRegression


Condition = tuple[ConditionType, ConditionStatus, Reason, str]


@dataclass(frozen=True)
class Decision:
    status: RolloutStatus
    verdict: RolloutVerdict
    conditions: tuple[Condition, ...]  # for reconcile.outcome.set_conditions
    events: tuple[EventIntent, ...] = ()
    target_events: tuple[TargetEvent, ...] = ()
    requeue_after: float | None = None  # seconds; None: nothing to wait for
