"""RESULT.json: the one thing the operator reads back from an attempt, and the exit code.

Decides state, reason and message from what happened (a loop summary, a worker failure, or a
failure before training started). Pure; must not run training or talk to MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

RESULT_METRIC_KEYS = ("loss", "tokensPerSecond", "expertLoadImbalance", "routerEntropy", "droppedFraction")


class Reason(StrEnum):
    COMPLETED = "Completed"
    DATA_CHECKSUM_MISMATCH = "DataChecksumMismatch"
    NON_FINITE_LOSS = "NonFiniteLoss"
    ROUTER_UNHEALTHY = "RouterUnhealthy"
    WORKER_FAILURE = "WorkerFailure"
    INVALID_CONFIG = "InvalidConfig"


@dataclass(frozen=True)
class TrainResult:
    state: str  # "Succeeded" | "Failed"
    reason: Reason
    message: str
    mlflow_run_id: str = ""
    checkpoint: str = ""
    step: int = 0
    resumed_from_step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    router_healthy: bool = False

    @property
    def succeeded(self) -> bool:
        return self.state == "Succeeded"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": str(self.reason),
            "message": self.message,
            "mlflowRunId": self.mlflow_run_id,
            "checkpoint": self.checkpoint,
            "step": self.step,
            "resumedFromStep": self.resumed_from_step,
            "metrics": {key: self.metrics[key] for key in RESULT_METRIC_KEYS if key in self.metrics},
            "routerHealthy": self.router_healthy,
        }

    def write(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")


def failed_before_training(reason: Reason, message: str, resumed_from_step: int = 0) -> TrainResult:
    return TrainResult("Failed", reason, message, resumed_from_step=resumed_from_step,
                       step=resumed_from_step)


def derive_result(summary: Mapping[str, Any] | None, worker_error: str | None, *,
                  run_id: str, resumed_from_step: int, fallback_checkpoint: str = "",
                  fallback_step: int = 0) -> TrainResult:
    """Combine the rank-0 loop summary (None when fit() failed) into the attempt's result.
    The fallback is the newest checkpoint on disk, what a retry would resume from."""
    if summary is None:
        message = worker_error or "training ended without a summary from rank 0"
        return TrainResult("Failed", Reason.WORKER_FAILURE, message, run_id, fallback_checkpoint,
                           max(fallback_step, resumed_from_step), resumed_from_step)
    common = dict(
        mlflow_run_id=run_id,
        checkpoint=summary.get("checkpoint") or fallback_checkpoint,
        step=int(summary["step"]),
        resumed_from_step=resumed_from_step,
        metrics=_finite(summary.get("metrics") or {}),
        router_healthy=bool(summary.get("router_healthy")),
    )
    if summary.get("failure") == "NonFiniteLoss":
        return TrainResult("Failed", Reason.NON_FINITE_LOSS, summary["message"], **common)
    if not common["router_healthy"]:
        return TrainResult("Failed", Reason.ROUTER_UNHEALTHY, summary["message"], **common)
    return TrainResult("Succeeded", Reason.COMPLETED, summary["message"], **common)


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    # RESULT.json must stay strict JSON: drop what is not a finite number rather than emit NaN.
    out = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and value == value and abs(value) != float("inf"):
            out[key] = float(value)
    return out
