"""The CRDs in crds/ are exactly what the models generate, and structurally sound."""

import pytest

from tugboat.api.crd import build_crd, crd_files
from tugboat.api.kinds import KINDS, TRAINING_RUN
from tugboat.dev.tools import repo_root


@pytest.mark.parametrize("directory", ["crds", "charts/tugboat/crds"])
def test_crds_dir_matches_models(directory):
    for name, text in crd_files().items():
        path = repo_root() / directory / name
        assert path.exists(), f"{directory}/{name} missing: run `make crds`"
        assert path.read_text() == text, f"{directory}/{name} drifted from the models: run `make crds`"


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_schemas_are_structural():
    for kind in KINDS:
        schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
            if "properties" in node:
                assert node.get("type") == "object", path
            if isinstance(node.get("exclusiveMinimum"), bool):
                assert "minimum" in node, path


def test_conditions_are_a_map_keyed_by_type():
    for kind in KINDS:
        status = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        conds = status["properties"]["conditions"]
        assert conds["x-kubernetes-list-type"] == "map"
        assert conds["x-kubernetes-list-map-keys"] == ["type"]


def test_nested_defaults_published():
    spec = build_crd(TRAINING_RUN)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["model"]["default"]["topK"] == 2
    assert spec["properties"]["routerHealth"]["default"] == {
        "maxImbalance": 1.6, "minEntropy": 1.1, "action": "TemperatureBump"}
    assert "dFF" in spec["properties"]["model"]["properties"]


def test_cel_rules_present():
    spec = build_crd(TRAINING_RUN)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec["properties"]["model"]["x-kubernetes-validations"]]
    assert "self.topK <= self.experts" in rules
