"""What a step and a run look like from outside: the per-step metric names (MLflow), the
progress line (stdout), and the summary metrics (checkpoint.json and RESULT.json).

Pure formatting and arithmetic over recorded steps; must not log or print anything itself.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tugboat_workloads.train.router_guard import GuardState, Intervention
from tugboat_workloads.train.router_health import RouterSample, SloVerdict
from tugboat_workloads.train.step import StepStats


@dataclass(frozen=True)
class StepRecord:
    step: int
    loss: float
    tokens_per_second: float
    sample: RouterSample

    def to_dict(self) -> dict[str, Any]:
        s = self.sample
        return {"step": self.step, "loss": self.loss, "tokens_per_second": self.tokens_per_second,
                "imbalance": s.imbalance, "entropy": s.entropy, "dropped_fraction": s.dropped_fraction,
                "expert_load": list(s.expert_load), "worst_imbalance": s.worst_imbalance,
                "worst_entropy": s.worst_entropy}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> StepRecord:
        sample = RouterSample(float(row["imbalance"]), float(row["entropy"]), float(row["dropped_fraction"]),
                              tuple(float(x) for x in row["expert_load"]), float(row["worst_imbalance"]),
                              float(row["worst_entropy"]))
        return cls(int(row["step"]), float(row["loss"]), float(row["tokens_per_second"]), sample)


def step_metrics(record: StepRecord, stats: StepStats, guard: GuardState,
                 learning_rate: float) -> dict[str, float]:
    sample = record.sample
    metrics = {
        "loss": record.loss,
        "aux_loss": stats.aux_loss,
        "grad_norm": stats.grad_norm,
        "learning_rate": learning_rate,
        "tokens_per_second": record.tokens_per_second,
        "expert_load_imbalance": sample.imbalance,
        "router_entropy": sample.entropy,
        "expert_load_imbalance_worst_layer": sample.worst_imbalance,
        "router_entropy_worst_layer": sample.worst_entropy,
        "dropped_fraction": sample.dropped_fraction,
        "gate_temperature": guard.temperature,
        "gate_noise_std": guard.noise_std,
        "router_guard_interventions": float(guard.interventions),
    }
    metrics.update({f"expert_load_{i}": load for i, load in enumerate(sample.expert_load)})
    return metrics


def summary_metrics(window: Sequence[StepRecord], this_attempt: Sequence[StepRecord],
                    verdict: SloVerdict) -> dict[str, float]:
    """RESULT.json metrics: loss over the final window, router numbers from the SLO verdict,
    throughput as the median over this attempt's steps (the first step pays one-off costs)."""
    timed = this_attempt[1:] or this_attempt or window
    return {
        "loss": sum(r.loss for r in window) / len(window),
        "tokensPerSecond": statistics.median(r.tokens_per_second for r in timed),
        "expertLoadImbalance": verdict.imbalance,
        "routerEntropy": verdict.entropy,
        "droppedFraction": verdict.dropped_fraction,
    }


def format_progress(record: StepRecord, total_steps: int, guard: GuardState,
                    intervention: Intervention | None) -> str:
    s = record.sample
    line = (f"[train] step {record.step}/{total_steps} loss {record.loss:.4f} "
            f"tok/s {record.tokens_per_second:,.0f} imbalance {s.imbalance:.3f} entropy {s.entropy:.3f} "
            f"dropped {s.dropped_fraction:.2%} temp {guard.temperature:.3f} noise {guard.noise_std:.2f}")
    if intervention is not None:
        line += f" | router guard {intervention.action}: {intervention.reason}"
    return line
