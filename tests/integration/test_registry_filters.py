"""Registry and tracking searches on a real MLflow server: a value with quotes matches exactly
the object of that name and nothing else, and one no filter can carry is refused, never sent."""

from __future__ import annotations

import pytest

from tugboat.tracking import Registry, Tracking, UnsafeFilterValue

pytestmark = pytest.mark.timeout(240)
UID = "tugboat.dev/release-uid"


def test_model_names_with_quotes_find_their_own_version_only(mlflow, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"graph")
    registry = Registry(mlflow)
    names = ["moe-victim", "moe' AND name LIKE '%", 'moe" AND name LIKE "%', "o'brien"]
    versions = {n: registry.register(n, tmp_path, {UID: "uid-shared"}) for n in names}
    for name in names:
        assert registry.find_version(name, UID, "uid-shared") == versions[name]
    # Hostile names that were never registered must not reach the victim's version.
    for probe in ("moe-victim' AND name != '", "x' OR name LIKE '%", "%"):
        assert registry.find_version(probe, UID, "uid-shared") is None
    for unsafe in ("a'b\"c", "moe-victim\\"):
        with pytest.raises(UnsafeFilterValue):
            registry.find_version(unsafe, UID, "uid-shared")


def test_run_tags_with_quotes_find_exactly_their_run(mlflow):
    tracking = Tracking(mlflow)
    exp = tracking._call("POST", "experiments/create", {"name": "prov-runs"})["experiment_id"]
    made = {}
    for value in ("ns/run", "ns/run' AND tags.`k` != '"):
        run = tracking._call("POST", "runs/create", {
            "experiment_id": exp, "tags": [{"key": "tugboat.dev/trainingrun", "value": value}]})
        made[value] = run["run"]["info"]["run_id"]
    for value, run_id in made.items():
        found = tracking.find_run("prov-runs", {"tugboat.dev/trainingrun": value})
        assert found is not None and found.run_id == run_id
    assert tracking.find_run("prov-runs", {"tugboat.dev/trainingrun": "ns/run' OR '1'='1"}) is None
