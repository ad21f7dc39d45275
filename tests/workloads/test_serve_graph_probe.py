"""The serving runtime re-runs the artifact's numerics probe on its own CPU before it is ready:
a reduced-precision graph that disagrees with torch is refused, and the fp32 graph serves instead
when allowed. The bad graph is crafted (another model's weights under the int8 name, signed like
the rest), so the test fails the same way on every CPU."""

import json
import shutil

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
