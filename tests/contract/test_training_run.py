"""TrainingRun: every spec the API accepts yields a ConfigMap and RayJob the training entrypoint
accepts, with the values the spec asked for; every other spec is refused with a clear message."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tugboat.api.crd import openapi_schema
from tugboat.api.training_run import TrainingRunSpec, TrainingRunStatus
from tugboat.conditions import find
from tugboat.reconcile import training_run as tr
from tugboat.reconcile.outcome import Meta

from .schema_cases import materialize, rule_messages, walk
from .workloads import mount, parse, ray_job_invocation

SCHEMA = openapi_schema(TrainingRunSpec)
BASE = materialize(SCHEMA, {"data": {"uri": "builtin://arithmetic?samples=64&seed=1", "sha256": "a" * 64}})
CASES, UNREACHED = walk(SCHEMA, BASE)
META = Meta(name="moe", namespace="ml", uid="0123456789abcdef", generation=1)
# Every GPU count the schema allows fits: capacity is the dev cluster's business, not the contract's.
POOL = tr.PoolView(nodes=4096, max_gpus_per_node=16, total_gpus=16 * 4096)
CONFIGS = {
    "mlflow": tr.Config("tugboat.dev/pool", "cpu", "img:1", "2.60.0", "http://127.0.0.1:5000", "/art"),
    "no-mlflow": tr.Config("tugboat.dev/pool", "cpu", "img:1", "2.60.0", None, "/art"),
}
# Spec sections the builder copies into the config verbatim, so the parsed value must be the same.
VERBATIM = ("model", "training", "routerHealth")


def test_every_enum_value_and_bound_is_a_case():
    assert UNREACHED == []
    ids = {c.id for c in CASES}
    assert {"training.precision='bf16'", "routerHealth.action='None'", "model.topK=16"} <= ids


def _attr(obj, wire_key: str):
    from pydantic.alias_generators import to_snake

    return getattr(obj, to_snake(wire_key))


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_accepted_specs_parse_in_the_training_entrypoint(case, config, tmp_path, now):
    raw = case.apply(BASE)
    try:
        TrainingRunSpec.model_validate(raw)
    except ValidationError as exc:  # an in-range value only a cross-field rule may refuse
        assert any(m in str(exc) for m in rule_messages(SCHEMA)), str(exc)
        return
    out = tr.decide(tr.Observed(META, raw, TrainingRunStatus(), None, POOL, config=config), now)
    valid = find(out.status.conditions, "Valid")
    assert valid.status == "True", valid.message
    kids = {c["kind"]: c for c in out.children}
    ray_job, config_map = kids["RayJob"], kids["ConfigMap"]
    # The entrypoint runs on the head, from the ConfigMap mounted there.
    head = ray_job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    inv = mount(ray_job_invocation(ray_job), head, head["containers"][0],
                {config_map["metadata"]["name"]: config_map}, tmp_path)
    parsed = parse(inv)
    for path, value in case.assignments:
        if path[0] in VERBATIM:
            assert _attr(_attr(parsed, path[0]), path[1]) == value, path
    workers = ray_job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    assert {v["name"] for v in workers["volumes"]} >= {"config"}  # workers read the same file
    assert json.loads(config_map["data"]["config.json"])["resources"]["workers"] == parsed.resources.workers
