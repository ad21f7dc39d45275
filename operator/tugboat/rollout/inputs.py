"""What the rollout state machine is given each pass: targets, observations, exposure.

Plain frozen values the controllers fill from Kubernetes and Prometheus; nothing here fetches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

TargetKey = tuple[str, str]  # namespace, AgentDeployment name


@dataclass(frozen=True)
class Target:
    """An AgentDeployment the release rolls out to (pins and the selector already applied)."""

    namespace: str
    name: str
    tenant: str
    wave: int = 0
    max_weight: int = 100  # the Tenant's spec.rollout.maxCanaryWeight
    stable_release: str | None = None  # what it serves today; None: nothing stable to protect
    traffic: str | None = None  # Gateway or ReplicaRatio, shown in the plan

    @property
    def key(self) -> TargetKey:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class Observation:
    """One query of one check on one target's canary (and, for relative checks, its stable)."""

    namespace: str
    name: str
    check: str
    at: datetime  # when it was measured: one measurement per check per interval counts
    query: str = ""
    value: float | None = None  # None: empty vector
    stable_value: float | None = None
    requests: float | None = None  # canary requests in the window
    error: str | None = None  # Prometheus refused the query (bad PromQL): counts toward errorLimit
    unreachable: bool = False  # Prometheus did not answer: inconclusive, never a pass
    detail: str = ""  # why it did not answer (refused, timed out, no URL configured)

    @property
    def key(self) -> TargetKey:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class Served:
    """What a target's canary has served so far in this rollout (cumulative, from Prometheus)."""

    namespace: str
    name: str
    requests: float
    tokens: float

    @property
    def key(self) -> TargetKey:
        return (self.namespace, self.name)
