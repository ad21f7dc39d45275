"""The serving runtime re-runs the artifact's numerics probe on its own CPU before it is ready:
a reduced-precision graph that disagrees with torch is refused, and the fp32 graph serves instead
when allowed. The bad graphs are crafted: another model's weights under the int8 name (refused on
every CPU), and ONNX Runtime's saturating U8S8 int8 scheme run on an emulated AVX2-only CPU next to
this one (the same signed artifact, judged by the CPU that serves it)."""

import json
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workloads.serve_fixtures import ServeProcess, http_get, http_post_json, signed_artifacts  # noqa: F401
from tugboat_workloads.sign.signer import sign_artifact

GUARDRAILS = {"fallback": {"minConfidence": 0.0, "mode": "Refuse"}}


def artifact_with_int8(signed_artifacts, tmp_path, int8_source):  # noqa: F811
    """The trained artifact plus `int8_source` as model.int8.onnx, re-signed with the release key."""
    artifact = tmp_path / "artifact"
    shutil.copytree(signed_artifacts.trained, artifact)
    shutil.copyfile(int8_source, artifact / "model.int8.onnx")
    sign_artifact(artifact, signed_artifacts.public_key.parent / "signing.pem")
    return artifact


def graph_series(proc):
    _, _, body = http_get(proc.url + "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    info = [s.labels for s in families["tugboat_serve_graph_info"].samples if s.value == 1]
    probe = {s.labels["graph"]: s.value for s in families["tugboat_serve_probe_top1_agreement"].samples}
    return info, probe


def test_a_variant_that_disagrees_with_torch_here_is_refused_and_fp32_serves(signed_artifacts, tmp_path):  # noqa: F811
    artifact = artifact_with_int8(signed_artifacts, tmp_path, signed_artifacts.untrained / "model.onnx")
    proc = ServeProcess(tmp_path / "run", artifact, signed_artifacts.public_key, GUARDRAILS,
                        extra_args=("--graph", "int8", "--graph-fallback")).wait_ready()
    try:
        _, _, ready = http_get(proc.url + "/readyz")
        graph = json.loads(ready)["graph"]
        assert (graph["requested"], graph["served"], graph["reason"]) == ("int8", "fp32", "ProbeBelowGate")
        assert graph["gate"] == 0.97 and graph["agreement"] == 1.0  # fp32's own probe run
        assert "below the gate 0.97" in graph["message"] and graph["cpu"] in graph["message"]
        info, probe = graph_series(proc)
        assert [(i["requested"], i["served"], i["reason"]) for i in info] == [
            ("int8", "fp32", "ProbeBelowGate")]
        assert info[0]["cpu"] == graph["cpu"] and probe == {"fp32": 1.0}
        assert "graph int8 requested, serving fp32" in proc.stderr()
        code, _, answer = http_post_json(proc.url + "/v1/generate", {"prompt": "1 3 5 7", "maxTokens": 2},
                                         {"X-Tenant": "acme"})
        assert code == 200 and answer["completion"] == "9 11"  # the trained fp32 graph answers
    finally:
        proc.stop()


def test_without_fallback_the_refused_variant_stops_the_server_naming_the_cpu(signed_artifacts, tmp_path):  # noqa: F811
    artifact = artifact_with_int8(signed_artifacts, tmp_path, signed_artifacts.untrained / "model.onnx")
    proc = ServeProcess(tmp_path / "run", artifact, signed_artifacts.public_key, GUARDRAILS,
                        extra_args=("--graph", "int8"))
    try:
        assert proc.wait_exit(timeout=120) == 1
    finally:
        proc.stop()
    line = next(line for line in proc.stderr().splitlines() if "refusing" in line)
    assert f"refusing to load artifact {artifact}: ProbeBelowGate: model.int8.onnx: top-1 agreement" in line
    assert "on this CPU (" in line and "ready:" not in proc.stderr()


def test_a_variant_that_agrees_on_this_cpu_is_served(signed_artifacts, tmp_path):  # noqa: F811
    # The trained fp32 bytes under the int8 name agree with torch exactly: accepted as int8.
    artifact = artifact_with_int8(signed_artifacts, tmp_path, signed_artifacts.trained / "model.onnx")
    proc = ServeProcess(tmp_path / "run", artifact, signed_artifacts.public_key, GUARDRAILS,
                        extra_args=("--graph", "int8")).wait_ready()
    try:
        info, probe = graph_series(proc)
        assert [(i["requested"], i["served"], i["reason"]) for i in info] == [
            ("int8", "int8", "Accepted")]
        assert probe == {"int8": 1.0}
    finally:
        proc.stop()


def test_an_unpublished_variant_falls_back_without_being_loaded(signed_artifacts, tmp_path):  # noqa: F811
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key, GUARDRAILS,
                        extra_args=("--graph", "fp16", "--graph-fallback")).wait_ready()
    try:
        info, _ = graph_series(proc)
        assert [(i["requested"], i["served"], i["reason"]) for i in info] == [
            ("fp16", "fp32", "NotPublished")]
    finally:
        proc.stop()


QEMU = shutil.which("qemu-x86_64")
# The export test's tiny model: its U8S8 int8 graph agrees with torch on ~96 % of the probe where
# the CPU has VNNI and on ~82 % where it has only AVX2 (tests/bench/bench_quantization.py).
TINY = {"layers": 2, "dModel": 32, "heads": 2, "experts": 4, "topK": 2, "dFF": 64, "vocabSize": 64,
        "seqLen": 16}


def _has_vnni() -> bool:
    from tugboat_workloads.numerics_probe import cpu_features
    return any(f in cpu_features() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


@pytest.fixture(scope="module")
def saturating_artifact(tmp_path_factory, signed_artifacts):  # noqa: F811
    """One signed artifact whose int8 graph uses ONNX Runtime's saturating U8S8 scheme, gate 0.9."""
    import torch

    from tugboat_workloads.export.__main__ import main as export_main
    from tugboat_workloads.export.variants import build_variant
    from tugboat_workloads.moe import MoEConfig, MoETransformer, save_checkpoint

    root = tmp_path_factory.mktemp("saturating")
    torch.manual_seed(7)
    model = MoETransformer(MoEConfig.from_dict(TINY))
    model.set_gate_temperature(1.3)
    checkpoint = save_checkpoint(root / "ckpt", model, step=0, metrics={})
    artifact = root / "artifact"
    assert export_main(["--checkpoint", str(checkpoint), "--out", str(artifact),
                        "--min-top1-agreement", "0.9"]) == 0
    build_variant("int8", artifact / "model.onnx", artifact, int8_scheme="u8s8")
    sign_artifact(artifact, signed_artifacts.public_key.parent / "signing.pem")
    return artifact


def _served_on(cpu_launcher, artifact, key, workdir):
    proc = ServeProcess(workdir, artifact, key, GUARDRAILS, launcher=cpu_launcher,
                        extra_args=("--graph", "int8", "--graph-fallback")).wait_ready(timeout=240)
    try:
        _, _, ready = http_get(proc.url + "/readyz")
        return json.loads(ready)["graph"]
    finally:
        proc.stop()


@pytest.mark.skipif(QEMU is None, reason="needs qemu-x86_64 (Debian qemu-user, installed by .ci/run) to "
                    "run the runtime on an emulated AVX2-only CPU")
def test_the_same_signed_int8_graph_is_judged_by_the_cpu_that_serves_it(saturating_artifact, signed_artifacts,  # noqa: F811
                                                                         tmp_path):
    avx2 = _served_on((QEMU, "-cpu", "Haswell"), saturating_artifact, signed_artifacts.public_key,
                      tmp_path / "avx2")
    assert (avx2["served"], avx2["reason"]) == ("fp32", "ProbeBelowGate"), avx2
    assert avx2["gate"] == 0.9 and "no VNNI" in avx2["cpu"]
    here = _served_on((), saturating_artifact, signed_artifacts.public_key, tmp_path / "host")
    expected = ("int8", "Accepted") if _has_vnni() else ("fp32", "ProbeBelowGate")
    assert (here["served"], here["reason"]) == expected, here
