"""MLflow I/O against a real SQLite store: experiment placement, the driver's run, and the
rank-0 sink's batched metrics (including batches above MLflow's 1000-metric limit)."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tugboat_workloads.train.router_guard import Intervention
from tugboat_workloads.train.tracking import (
    TAG_CHECKPOINT,
    TAG_GUARD_LAST,
    MlflowStepSink,
    RunTracker,
    sqlite_database_path,
)


def test_sqlite_paths_follow_sqlalchemy_slashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_database_path("sqlite:////abs/dir/m.db") == Path("/abs/dir/m.db")
    assert sqlite_database_path("sqlite:///rel/m.db") == tmp_path / "rel" / "m.db"
    assert sqlite_database_path("http://127.0.0.1:5000") is None
    assert sqlite_database_path("sqlite:///:memory:") is None


@pytest.mark.timeout(300)
def test_run_tags_batched_metrics_and_artifacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")  # artifacts must not land in the working directory
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = RunTracker(uri, "exp")
    run_id = tracker.start("r-attempt-1", {"tugboat.dev/attempt": "1"}, {"model.dModel": 32})
    sink = MlflowStepSink(uri, run_id, flush_every=25)
    for step in range(1, 31):  # 30 steps x 40 metrics = 1200 metrics: more than one batch
        sink.log_step(step, {f"m{i}": step * 0.5 + i for i in range(40)})
    sink.log_intervention(Intervention(7, "entropy low", "Both", 1.2, 0.8, 1.25, 0.1))
    checkpoint = tmp_path / "ck"
    checkpoint.mkdir()
    (checkpoint / "checkpoint.json").write_text('{"step": 30}')
    sink.log_checkpoint(30, str(checkpoint))
    sink.close()
    tracker.log_checkpoint(str(checkpoint))
    tracker.log_interventions([{"step": 7}])
    tracker.finish(succeeded=True)

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["model.dModel"] == "32"
    assert run.data.tags[TAG_CHECKPOINT] == str(checkpoint) and '"step": 7' in run.data.tags[TAG_GUARD_LAST]
    history = client.get_metric_history(run_id, "m39")
    assert sorted((m.step, m.value) for m in history) == [(s, s * 0.5 + 39) for s in range(1, 31)]
    artifact_root = Path(run.info.artifact_uri.removeprefix("file://"))
    assert artifact_root.is_relative_to(tmp_path / "mlartifacts")
    assert (artifact_root / "checkpoint" / "checkpoint.json").is_file()
    assert (artifact_root / "router_guard" / "interventions.json").is_file()
