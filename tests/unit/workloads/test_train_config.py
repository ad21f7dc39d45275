"""CONFIG.json parsing for the training entrypoint: defaults, camelCase mapping, and errors
that name the field path."""

import json

import pytest

from tugboat_workloads.train.config import InvalidConfigError, load_train_config, parse_train_config


def _raw(**overrides):
    raw = {"name": "moe", "namespace": "ml", "storagePath": "/tmp/tugboat-store",
           "data": {"uri": "builtin://arithmetic?samples=64&seed=0"}}
    raw.update(overrides)
    return raw


def test_defaults_follow_the_contract():
    cfg = parse_train_config(_raw())
    assert (cfg.training.steps, cfg.training.batch_size, cfg.training.learning_rate) == (200, 16, 0.003)
    assert (cfg.training.precision, cfg.training.checkpoint_interval, cfg.training.seed) == ("fp32", 50, 0)
    assert (cfg.resources.workers, cfg.resources.use_gpu, cfg.resources.cpus_per_worker) == (2, False, 1)
    assert (cfg.router_health.max_imbalance, cfg.router_health.min_entropy) == (1.6, 1.1)
    assert cfg.router_health.action == "TemperatureBump"
    assert cfg.model.d_model == 128 and cfg.mlflow is None and cfg.per_worker_batch == 8
    assert cfg.run_label == "ml/moe"


def test_full_config_maps_camel_case():
    cfg = parse_train_config(_raw(
        uid="u1", attempt=3, model={"dModel": 32, "heads": 2},
        data={"uri": "builtin://arithmetic", "sha256": "AB" * 32},
        training={"steps": 40, "batchSize": 12, "learningRate": 0.01, "precision": "bf16",
                  "checkpointInterval": 20, "seed": 7},
        resources={"workers": 3, "useGpu": True, "cpusPerWorker": 0.5},
        routerHealth={"maxImbalance": 2, "minEntropy": 0.5, "action": "Both"},
        mlflow={"trackingUri": "sqlite:////tmp/x.db", "experiment": "e"},
    ))
    assert (cfg.uid, cfg.attempt, cfg.model.d_model, cfg.data.sha256) == ("u1", 3, 32, "ab" * 32)
    assert (cfg.training.precision, cfg.resources.cpus_per_worker, cfg.per_worker_batch) == ("bf16", 0.5, 4)
    assert (cfg.router_health.action, cfg.mlflow.experiment) == ("Both", "e")


@pytest.mark.parametrize(
    "overrides, path",
    [
        ({"name": None}, "name"),
        ({"storagePath": "relative/dir"}, "storagePath"),
        ({"data": {}}, "data.uri"),
        ({"data": {"uri": "builtin://arithmetic", "sha256": "xyz"}}, "data.sha256"),
        ({"training": {"steps": 0}}, "training.steps"),
        ({"training": {"batchSize": 15}}, "training.batchSize"),  # not divisible by 2 workers
        ({"training": {"learningRate": -1}}, "training.learningRate"),
        ({"training": {"precision": "fp16"}}, "training.precision"),
        ({"training": {"checkpointIntervl": 5}}, "training.checkpointIntervl"),
        ({"resources": {"useGpu": "yes"}}, "resources.useGpu"),
        ({"resources": {"workers": 0}}, "resources.workers"),
        ({"routerHealth": {"action": "Reboot"}}, "routerHealth.action"),
        ({"routerHealth": {"maxImbalance": 0.5}}, "routerHealth.maxImbalance"),
        ({"mlflow": {"experiment": "e"}}, "mlflow.trackingUri"),
        ({"model": {"experts": 2, "topK": 3}}, "model.topK"),
        ({"model": {"dmodel": 3}}, "model.dmodel"),
        ({"extra": 1}, "extra"),
        ({"data": {"uri": "file:///d/t.txt", "roots": ["relative"]}}, "data.roots"),
        ({"data": {"uri": "file:///d/t.txt", "roots": "/d"}}, "data.roots"),
    ],
)
def test_errors_name_the_field_path(overrides, path):
    with pytest.raises(InvalidConfigError) as info:
        parse_train_config(_raw(**overrides))
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")


def test_load_reports_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(InvalidConfigError, match="cannot read"):
        load_train_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidConfigError, match="not valid JSON"):
        load_train_config(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_raw()))
    assert load_train_config(good).name == "moe"


def test_dataset_roots_come_from_the_config_and_default_to_none():
    assert parse_train_config(_raw()).data.roots == ()
    raw = _raw(data={"uri": "file:///d/t.txt", "roots": ["/d", "/e/"]})
    assert parse_train_config(raw).data.roots == ("/d", "/e/")


def test_training_refuses_a_file_dataset_outside_its_roots_before_it_starts(tmp_path):
    from tugboat_workloads.train.entrypoint import run_attempt

    (tmp_path / "datasets").mkdir()
    raw = _raw(storagePath=str(tmp_path / "store"),
               data={"uri": "file:///etc/passwd", "roots": [str(tmp_path / "datasets")]})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    result = run_attempt(str(path))
    assert result.state == "Failed" and result.reason == "InvalidConfig"
    assert "file:///etc/passwd" in result.message and "outside the allowed dataset roots" in result.message
