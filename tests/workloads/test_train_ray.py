"""The training entrypoint end to end on a real local Ray cluster (TorchTrainer, 2 CPU workers,
gloo) with a real MLflow SQLite store: checkpoints, RESULT.json, MLflow tags/metrics/artifacts,
and a second attempt on the same storagePath that resumes from the first one's checkpoint (how
the operator's retry works)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tugboat_workloads.data import dataset_sha256
from tugboat_workloads.moe import load_checkpoint

URI = "builtin://arithmetic?samples=512&seed=0"
MODEL = {"dModel": 32, "heads": 2, "experts": 4, "dFF": 64, "vocabSize": 16, "seqLen": 16}


def _write_config(root: Path, steps: int, attempt: int) -> Path:
    config = {
        "name": "moe-tiny", "namespace": "ml", "uid": "uid-123", "attempt": attempt, "model": MODEL,
        "data": {"uri": URI, "sha256": dataset_sha256(URI, 16, 16)},
        "training": {"steps": steps, "batchSize": 16, "learningRate": 0.01, "checkpointInterval": 10},
        # useGpu on a machine without GPUs: the entrypoint must warn and train on CPU.
        "resources": {"workers": 2, "useGpu": True, "cpusPerWorker": 1},
        "routerHealth": {"maxImbalance": 1.9, "minEntropy": 0.5, "action": "TemperatureBump"},
        "mlflow": {"trackingUri": f"sqlite:///{root}/mlflow.db", "experiment": "tugboat-test"},
        "storagePath": str(root / "store"),
    }
    path = root / f"config-{attempt}.json"
    path.write_text(json.dumps(config))
    return path


def _run_entrypoint(root: Path, steps: int, attempt: int) -> tuple[subprocess.CompletedProcess, dict]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result_path = root / f"result-{attempt}.json"
    config = _write_config(root, steps, attempt)
    done = subprocess.run(
        [sys.executable, "-m", "tugboat_workloads.train", "--config", str(config),
         "--result", str(result_path)],
        cwd=root, env=env, capture_output=True, text=True, timeout=280,
    )
    output = f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert result_path.exists(), f"no RESULT.json; {output}"
    return done, json.loads(result_path.read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("train-ray")


@pytest.fixture(scope="module")
def first_attempt(workdir):
    return _run_entrypoint(workdir, steps=30, attempt=1)


@pytest.mark.timeout(300)
def test_two_worker_run_checkpoints_and_reports(workdir, first_attempt):
    done, result = first_attempt
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (result["state"], result["reason"], result["step"], result["resumedFromStep"]) == (
        "Succeeded", "Completed", 30, 0)
    assert result["routerHealthy"] is True
    assert set(result["metrics"]) == {"loss", "tokensPerSecond", "expertLoadImbalance", "routerEntropy",
                                      "droppedFraction"}
    assert result["metrics"]["tokensPerSecond"] > 0
    checkpoint = Path(result["checkpoint"])
    assert checkpoint.is_relative_to(workdir / "store") and checkpoint.name == "checkpoint_step_0000030"
    model, config, step = load_checkpoint(checkpoint)
    assert step == 30 and config.d_model == 32 and not model.training
    assert len(list((workdir / "store").glob("*/checkpoint_step_*"))) == 3  # every 10 steps
    assert "no GPUs" in done.stdout + done.stderr  # useGpu fell back to CPU, loudly


@pytest.mark.timeout(300)
def test_mlflow_run_has_tags_metrics_and_artifacts(workdir, first_attempt):
    _, result = first_attempt
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    run = client.get_run(result["mlflowRunId"])
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["tugboat.dev/trainingrun"] == "ml/moe-tiny"
    assert (tags["tugboat.dev/uid"], tags["tugboat.dev/attempt"]) == ("uid-123", "1")
    assert tags["tugboat.dev/checkpoint"] == result["checkpoint"]
    assert tags["tugboat.dev/resumed-from-step"] == "0"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(1, 31))
    for key in ("tokens_per_second", "expert_load_imbalance", "router_entropy", "dropped_fraction",
                "gate_temperature", "router_guard_interventions", "expert_load_0", "expert_load_3"):
        assert key in run.data.metrics, key
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert {"checkpoint/model.pt", "checkpoint/model_config.json", "checkpoint/train_state.pt",
            "checkpoint/checkpoint.json"} <= artifacts
    interventions = json.loads(Path(client.download_artifacts(
        run.info.run_id, "router_guard/interventions.json", str(workdir))).read_text())
    assert len(interventions) == int(run.data.metrics["router_guard_interventions"])
    plot = Path(client.download_artifacts(run.info.run_id, "plots/router_health.png", str(workdir)))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


@pytest.mark.timeout(300)
def test_second_attempt_resumes_from_the_checkpoint(workdir, first_attempt):
    done, result = _run_entrypoint(workdir, steps=50, attempt=2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (result["state"], result["step"], result["resumedFromStep"]) == ("Succeeded", 50, 30)
    assert "resuming from step 30" in done.stdout
    assert Path(result["checkpoint"]).name == "checkpoint_step_0000050"
    run = MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(result["mlflowRunId"])
    assert run.info.run_id != first_attempt[1]["mlflowRunId"]
    tags = run.data.tags
    assert (tags["tugboat.dev/resumed-from-step"], tags["tugboat.dev/attempt"]) == ("30", "2")
    steps = sorted(m.step for m in MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_metric_history(
        run.info.run_id, "loss"))
    assert steps == list(range(31, 51))
