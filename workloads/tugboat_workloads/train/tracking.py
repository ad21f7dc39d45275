"""MLflow I/O for a training attempt: the run and its tags (driver), batched per-step metrics
and checkpoint/intervention records (rank-0 worker), final artifacts and status (driver).

Decides tag and artifact names (the operator reads them back). Talks to MLflow through
MlflowClient only, never the fluent API's process-global active run: the driver and the rank-0
worker write to the same run from different processes. Must not decide what to log or when.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tugboat_workloads.train.router_guard import Intervention

TAG_TRAINING_RUN = "tugboat.dev/trainingrun"
TAG_UID = "tugboat.dev/uid"
TAG_ATTEMPT = "tugboat.dev/attempt"
TAG_CHECKPOINT = "tugboat.dev/checkpoint"
TAG_RESUMED_FROM = "tugboat.dev/resumed-from-step"
TAG_GUARD_LAST = "tugboat.dev/router-guard-last"
TAG_RESULT = "tugboat.dev/result"
TAG_ROUTER_HEALTHY = "tugboat.dev/router-healthy"
INTERVENTIONS_ARTIFACT = "router_guard/interventions.json"
ROUTER_PLOT_ARTIFACT_DIR = "plots"  # router_health.png
CHECKPOINT_ARTIFACT_DIR = "checkpoint"
_BATCH_LIMIT = 1000  # MLflow's maximum number of metrics in one log_batch call


def _experiment_id(client: MlflowClient, tracking_uri: str, name: str) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    # With a SQLite store MLflow would put artifacts under the current directory; keep them
    # next to the database instead, wherever the entrypoint happens to run.
    location = None
    database = sqlite_database_path(tracking_uri)
    if database is not None:
        location = (database.parent / "mlartifacts" / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another attempt created it between our lookup and create.
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return again.experiment_id


def sqlite_database_path(tracking_uri: str) -> Path | None:
    """The file behind a SQLAlchemy SQLite URI: sqlite:///relative.db or sqlite:////abs.db."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    database = tracking_uri[len(prefix):].split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


class RunTracker:
    """Driver side: one MLflow run per attempt."""

    def __init__(self, tracking_uri: str, experiment: str):
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_id = _experiment_id(self.client, tracking_uri, experiment)
        self.run_id = ""

    def start(self, run_name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=dict(tags))
        self.run_id = run.info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return self.run_id

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_checkpoint(self, directory: str) -> None:
        self.client.log_artifacts(self.run_id, directory, artifact_path=CHECKPOINT_ARTIFACT_DIR)

    def log_interventions(self, interventions: list[dict[str, Any]]) -> None:
        self.client.log_text(self.run_id, json.dumps(interventions, indent=2) + "\n", INTERVENTIONS_ARTIFACT)

    def history(self, key: str) -> dict[int, float]:
        """step -> value of one metric (the last value when a step was logged twice, on resume)."""
        return {m.step: m.value for m in sorted(self.client.get_metric_history(self.run_id, key),
                                                key=lambda m: m.timestamp)}

    def log_router_plot(self, experts: int, max_imbalance: float, min_entropy: float, title: str) -> None:
        import tempfile

        from tugboat_workloads.train.router_plot import render_router_health

        with tempfile.TemporaryDirectory() as tmp:
            path = render_router_health(
                Path(tmp) / "router_health.png", [self.history(f"expert_load_{e}") for e in range(experts)],
                self.history("loss"), self.history("expert_load_imbalance"), self.history("router_entropy"),
                max_imbalance, min_entropy, title)
            self.client.log_artifact(self.run_id, str(path), artifact_path=ROUTER_PLOT_ARTIFACT_DIR)

    def finish(self, succeeded: bool) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if succeeded else "FAILED")


class MlflowStepSink:
    """Rank-0 worker side: buffers per-step metrics and writes them in batches."""

    def __init__(self, tracking_uri: str, run_id: str, flush_every: int = 25):
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.run_id = run_id
        self.flush_every = flush_every
        self._pending: list[Metric] = []
        self._steps_pending = 0

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self._pending.extend(Metric(key, float(value), now, step) for key, value in metrics.items())
        self._steps_pending += 1
        if self._steps_pending >= self.flush_every:
            self.flush()

    def log_checkpoint(self, step: int, directory: str) -> None:
        self.flush()
        self.client.set_tag(self.run_id, TAG_CHECKPOINT, directory)

    def log_intervention(self, intervention: Intervention) -> None:
        self.client.set_tag(self.run_id, TAG_GUARD_LAST, json.dumps(intervention.to_dict(), sort_keys=True))

    def flush(self) -> None:
        for start in range(0, len(self._pending), _BATCH_LIMIT):
            self.client.log_batch(self.run_id, metrics=self._pending[start:start + _BATCH_LIMIT])
        self._pending, self._steps_pending = [], 0

    def close(self) -> None:
        self.flush()

