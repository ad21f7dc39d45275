"""The registry alias on a real MLflow server: a promoted release's SetAlias action moves
`name@alias` to its version (carried out by the ModelRelease controller), a later one moves it on,
and a model or alias that does not exist reads as None."""

from __future__ import annotations

import pytest

from tugboat.api.model_release import ModelReleaseStatus
from tugboat.controllers.model_release import act
from tugboat.controllers.settings import Settings
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import Outcome
from tugboat.tracking import Registry

pytestmark = pytest.mark.timeout(240)


def test_promotion_moves_the_alias_and_a_later_one_moves_it_on(mlflow, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not really a model")
    registry = Registry(mlflow)
    v1 = registry.register("moe-alias", tmp_path, {"tugboat.dev/release": "v1"})
    v2 = registry.register("moe-alias", tmp_path, {"tugboat.dev/release": "v2"})
    assert registry.alias_version("moe-alias", "production") is None
    assert registry.alias_version("no-such-model", "production") is None

    settings = Settings(mlflow_tracking_uri=mlflow)
    act(Outcome(status=ModelReleaseStatus(), actions=(mr.SetAlias("moe-alias", "production", v1),)), settings)
    assert registry.alias_version("moe-alias", "production") == v1
    act(Outcome(status=ModelReleaseStatus(), actions=(mr.SetAlias("moe-alias", "production", v2),)), settings)
    assert registry.alias_version("moe-alias", "production") == v2 != v1
