"""What a report shows, as plain values: gathered by `gather`, drawn by `render`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Missing:
    """Data a section could not get, and why: the section says so instead of drawing."""

    why: str


@dataclass(frozen=True)
class Series:
    label: str
    x: tuple[float, ...]  # steps, or Unix seconds
    y: tuple[float, ...]


@dataclass(frozen=True)
class TrainingData:
    name: str
    namespace: str
    status: dict
    max_imbalance: float
    min_entropy: float
    # MLflow metric key -> {step: value}; Missing when there is no tracking server or run.
    history: dict[str, dict[int, float]] | Missing


@dataclass(frozen=True)
class AnalysisSeries:
    """One check on one target over the rollout, against its threshold."""

    target: str
    check: str
    threshold: float
    direction: str
    series: Series | Missing


@dataclass(frozen=True)
class Decision:
    """The point where the rollout ended: promoted or rolled back."""

    kind: str  # "Promoted" or "RolledBack"
    time: float  # Unix seconds
    message: str = ""


@dataclass(frozen=True)
class ReleaseData:
    name: str
    namespace: str
    status: dict
    # Share of each tenant's requests served by this release over time, in percent.
    weights: list[Series] | Missing
    analysis: list[AnalysisSeries] | Missing
    decision: Decision | None = None
    training: TrainingData | None = field(default=None)
