"""The training entrypoint's failures before any training, and a retry after the final
checkpoint: real subprocesses, no Ray cluster is needed (none must be started)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tugboat_workloads.data import dataset_sha256
from tugboat_workloads.moe import MoEConfig, MoETransformer, save_checkpoint

URI = "builtin://arithmetic?samples=64&seed=0"
MODEL = {"dModel": 32, "heads": 2, "experts": 4, "dFF": 64, "vocabSize": 16, "seqLen": 8}


def _config(root: Path, **overrides) -> dict:
    config = {"name": "moe", "namespace": "ml", "attempt": 1, "model": MODEL,
              "data": {"uri": URI, "sha256": dataset_sha256(URI, 16, 8)},
              "training": {"steps": 20, "batchSize": 4}, "storagePath": str(root / "store")}
    config.update(overrides)
    return config


def _run(root: Path, config: dict) -> tuple[subprocess.CompletedProcess, dict]:
    (root / "config.json").write_text(json.dumps(config))
    argv = [sys.executable, "-m", "tugboat_workloads.train", "--config", str(root / "config.json"),
            "--result", str(root / "result.json")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    return done, json.loads((root / "result.json").read_text())


@pytest.mark.timeout(300)
def test_checksum_mismatch_fails_before_training(tmp_path):
    wrong = "0" * 64
    done, result = _run(tmp_path, _config(tmp_path, data={"uri": URI, "sha256": wrong}))
    assert done.returncode == 1
    assert (result["state"], result["reason"]) == ("Failed", "DataChecksumMismatch")
    assert wrong in result["message"] and dataset_sha256(URI, 16, 8) in result["message"]
    assert not (tmp_path / "store").exists()  # nothing trained, nothing written


@pytest.mark.timeout(300)
def test_invalid_config_names_the_field(tmp_path):
    done, result = _run(tmp_path, _config(tmp_path, training={"steps": 20, "batchSize": 5}))
    assert done.returncode == 2
    assert (result["state"], result["reason"]) == ("Failed", "InvalidConfig")
    assert result["message"].startswith("training.batchSize:")


@pytest.mark.timeout(300)
def test_checkpoint_of_another_model_is_invalid_config_not_a_fresh_start(tmp_path):
    other = MoEConfig.from_dict({**MODEL, "experts": 2, "topK": 1})
    save_checkpoint(tmp_path / "store" / "old-run" / "checkpoint_step_0000010", MoETransformer(other),
                    step=10, metrics={}, train_state={})
    done, result = _run(tmp_path, _config(tmp_path))
    assert (done.returncode, result["reason"]) == (2, "InvalidConfig")
    assert "experts 2 != 4" in result["message"] and "storagePath" in result["message"]


@pytest.mark.timeout(300)
def test_retry_after_the_final_checkpoint_succeeds_without_retraining(tmp_path):
    final = tmp_path / "store" / "attempt-1" / "checkpoint_step_0000020"
    metrics = {"loss": 0.4, "tokensPerSecond": 900.0, "expertLoadImbalance": 1.2, "routerEntropy": 1.2,
               "droppedFraction": 0.0, "routerHealthy": 1.0}
    save_checkpoint(final, MoETransformer(MoEConfig.from_dict(MODEL)), step=20, metrics=metrics,
                    train_state={"optimizer": {}})
    # An interrupted later write (no checkpoint.json) must be ignored, not resumed from.
    (tmp_path / "store" / "attempt-2" / "checkpoint_step_0000030").mkdir(parents=True)
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    done, result = _run(tmp_path, _config(tmp_path, attempt=2, mlflow={"trackingUri": tracking}))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (result["state"], result["step"], result["resumedFromStep"]) == ("Succeeded", 20, 20)
    assert result["checkpoint"] == str(final) and result["metrics"]["loss"] == 0.4
    run = MlflowClient(tracking).get_run(result["mlflowRunId"])
    assert run.data.tags["tugboat.dev/resumed-from-step"] == "20" and run.info.status == "FINISHED"
    assert "Started a local Ray instance" not in done.stdout + done.stderr
