"""ModelRelease: every spec the API accepts yields export and signing Jobs whose arguments the
export and sign workloads accept; every other spec is refused with a clear message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tugboat.api.crd import openapi_schema
from tugboat.api.model_release import ModelReleaseSpec, ModelReleaseStatus
from tugboat.conditions import find
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import Meta
from tugboat.reconcile.provenance import checkpoint_prefix

from .schema_cases import materialize, rule_messages, walk
from .workloads import invocation, parse

SCHEMA = openapi_schema(ModelReleaseSpec)
# Optional parts filled in, so their enums and bounds are reached too.
BASE = materialize(SCHEMA, {
    "modelLine": "moe", "source": {"trainingRun": "moe"},
    "export": {"targets": ["onnx", "tensorrt"], "variants": ["fp16", "int8"]},
    "rollout": {"selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}},
})
CASES, UNREACHED = walk(SCHEMA, BASE)
META = Meta(name="rel", namespace="ml", uid="feedfacecafebeef", generation=1)
# A checkpoint under its TrainingRun's own storage (the only place a release exports from).
SOURCE = mr.SourceView(ready=True, failed=False, uid="0123456789abcdef",
                       checkpoint=f"{checkpoint_prefix('/art', 'ml', 'moe', '0123456789abcdef')}/ckpt")
CONFIGS = {
    "shared-dir": mr.Config("img", "tugboat.dev/pool", "/art", None, registry=True),
    "pvc": mr.Config("img", "tugboat.dev/pool", "/art", "artifacts", registry=False),
}


def test_every_enum_value_and_bound_is_a_case():
    assert UNREACHED == []
    ids = {c.id for c in CASES}
    assert {"export.targets=['tensorrt']", "export.tensorrtPrecision='fp32'", "export.opset=18",
            "signing.method='SigstoreKeyless'"} <= ids


def drive(raw: dict, config: mr.Config, now) -> tuple[mr.Outcome, list[dict]]:
    """decide() pass after pass, each Job it asks for reported done, until it asks for none."""
    observed = mr.Observed(META, raw, ModelReleaseStatus(), SOURCE, {}, trusted_key=True, config=config)
    jobs: list[dict] = []
    for _ in range(5):
        out = mr.decide(observed, now)
        if not out.children:
            return out, jobs
        jobs += out.children
        done = {j["metadata"]["labels"]["tugboat.dev/workload"]: mr.JobView(True, False) for j in jobs}
        observed = mr.Observed(**{**observed.__dict__, "status": out.status, "jobs": done})
    raise AssertionError("decide kept asking for Jobs")


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_accepted_specs_yield_jobs_the_workloads_accept(case, config, now):
    raw = case.apply(BASE)
    try:
        spec = ModelReleaseSpec.model_validate(raw)
    except ValidationError as exc:  # an in-range value only a cross-field rule may refuse
        assert any(m in str(exc) for m in rule_messages(SCHEMA)), str(exc)
        return
    out, jobs = drive(raw, config, now)
    valid = find(out.status.conditions, "Valid")
    if valid.status == "False":  # refused by the operator: said where a person looks
        assert valid.reason == "InvalidSpec" and valid.message.startswith("spec."), valid.message
        return
    roles = [j["metadata"]["labels"]["tugboat.dev/workload"] for j in jobs]
    wanted = ["export" if t == "onnx" else "export-tensorrt" for t in spec.export.targets]
    assert roles == [*wanted, "sign"]
    *exports, sign = (parse(invocation(j["spec"]["template"]["spec"]["containers"][0])) for j in jobs)
    for export, target in zip(exports, spec.export.targets, strict=True):
        assert (export.target, export.opset, export.tolerance, export.variants) == (
            target, spec.export.opset, spec.export.tolerance, tuple(spec.export.variants))
        assert export.min_top1_agreement == spec.export.min_top1_agreement or not spec.export.variants
        assert export.trt_precision == spec.export.tensorrt_precision or target == "onnx"
    # The sign workload signs with a private key: that must be what the spec asked for.
    assert spec.signing.method == "Key" and sign.private_key.name == spec.signing.key_secret_ref.key
