"""Serving runtime startup: a tampered, foreign-signed or mis-configured artifact is never
served (exit code and one log line), and --no-guardrails really switches guardrails off."""

import json
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workloads.serve_fixtures import ServeProcess, http_get, http_post_json, signed_artifacts  # noqa: F401

GUARDRAILS = {"promptFilter": {"denyPatterns": [r"\b13\b"]}, "tokenBudget": {"tokensPerWindow": 4},
              "fallback": {"minConfidence": 0.5, "mode": "Refuse"}}


def flip_byte(path, offset_fraction=0.5):
    data = bytearray(path.read_bytes())
    data[int(len(data) * offset_fraction)] ^= 0x01
    path.write_bytes(bytes(data))


def copy_artifact(signed_artifacts, tmp_path, name="artifact"):  # noqa: F811
    target = tmp_path / name
    shutil.copytree(signed_artifacts.trained, target)
    return target


def exit_code_and_log(proc):
    try:
        return proc.wait_exit(timeout=120), proc.stderr()
    finally:
        proc.stop()


def assert_refused(proc, artifact, reason):
    code, log = exit_code_and_log(proc)
    assert code == 1, log
    assert f"refusing to load artifact {artifact}: {reason}: " in log, log
    assert "ready:" not in log


def test_tampered_model_is_refused_before_loading(signed_artifacts, tmp_path):  # noqa: F811
    artifact = copy_artifact(signed_artifacts, tmp_path)
    flip_byte(artifact / "model.onnx")
    proc = ServeProcess(tmp_path / "run", artifact, signed_artifacts.public_key, GUARDRAILS)
    assert_refused(proc, artifact, "DigestMismatch")
    line = next(line for line in proc.stderr().splitlines() if "refusing" in line)
    assert "model.onnx" in line


@pytest.mark.parametrize("tamper, reason", [
    (lambda d: (d / "extra.bin").write_bytes(b"payload"), "UnexpectedFile"),
    (lambda d: (d / "model.sig").unlink(), "MissingSignature"),
    (lambda d: (d / "model_config.json").write_text(json.dumps({"vocabSize": 64, "seqLen": 16})),
     "DigestMismatch"),
])
def test_other_tampering_is_refused(signed_artifacts, tmp_path, tamper, reason):  # noqa: F811
    artifact = copy_artifact(signed_artifacts, tmp_path)
    tamper(artifact)
    proc = ServeProcess(tmp_path / "run", artifact, signed_artifacts.public_key, GUARDRAILS)
    assert_refused(proc, artifact, reason)


def test_an_artifact_signed_by_another_key_is_refused(signed_artifacts, tmp_path):  # noqa: F811
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.other_public_key,
                        GUARDRAILS)
    assert_refused(proc, signed_artifacts.trained, "BadSignature")


def test_a_tampered_fallback_refuses_the_whole_server(signed_artifacts, tmp_path):  # noqa: F811
    fallback = copy_artifact(signed_artifacts, tmp_path, "fallback")
    flip_byte(fallback / "model.onnx", 0.9)
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key,
                        {**GUARDRAILS, "fallback": {"mode": "SimpleModel"}},
                        extra_args=("--fallback-artifact", str(fallback)))
    assert_refused(proc, fallback, "DigestMismatch")


@pytest.mark.parametrize("guardrails, extra_args, message", [
    ({"tokenBudget": {"tokensPerWindow": 0}}, (), "guardrails config field tokenBudget.tokensPerWindow"),
    ({"fallback": {"mode": "SimpleModel"}}, (), "fallback.mode: SimpleModel needs --fallback-artifact"),
    ({"successDetector": {"kind": "JsonSchema", "schema": {"type": 5}}}, (), "successDetector.schema"),
    ({"promptFilter": {"denyPatterns": ["ok", "(?<=x)y"]}}, (),
     "promptFilter.denyPatterns[1]: '(?<=x)y' is not a valid RE2 pattern: invalid perl operator: (?<"),
    (GUARDRAILS, ("--inference-workers", "none"),
     "--inference-workers (or TUGBOAT_INFERENCE_WORKERS) must be an integer"),
])
def test_bad_configuration_exits_2_naming_the_field(signed_artifacts, tmp_path, guardrails,  # noqa: F811
                                                    extra_args, message):
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key,
                        guardrails, extra_args=extra_args)
    code, log = exit_code_and_log(proc)
    assert code == 2, log
    assert message in log


def test_a_short_audit_key_exits_2(signed_artifacts, tmp_path):  # noqa: F811
    key = tmp_path / "key"
    key.write_text("hunter2\n")
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key,
                        GUARDRAILS, extra_args=("--audit-key-file", str(key)))
    code, log = exit_code_and_log(proc)
    assert code == 2, log
    assert f"audit key {key} has 7 bytes, at least 32 are needed" in log


def test_a_malformed_api_keys_file_exits_2(signed_artifacts, tmp_path):  # noqa: F811
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"name": "ci", "sha256": "nothex", "permissionLevel": "Standard"}]}))
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key,
                        GUARDRAILS, api_keys=(), extra_args=("--api-keys-file", str(keys)))
    code, log = exit_code_and_log(proc)
    assert code == 2, log
    assert f"API keys {keys}: keys[0].sha256: must be 64 lower-case hex digits" in log


def test_without_api_keys_every_request_is_401_and_says_why(signed_artifacts, tmp_path):  # noqa: F811
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key,
                        GUARDRAILS, api_keys=(),
                        extra_args=("--api-keys-file", str(tmp_path / "not-mounted.json"))).wait_ready()
    try:
        status, headers, reply = http_post_json(proc.url + "/v1/generate", {"prompt": "1 2"})
        assert status == 401 and reply["error"]["reason"] == "UnknownApiKey", reply
        assert "the tenant's API keys Secret does not exist" in reply["error"]["message"]
        assert "every request is a 401" in proc.stderr()
    finally:
        assert proc.stop() == 0


def test_no_guardrails_serves_what_guardrails_would_refuse(signed_artifacts, tmp_path):  # noqa: F811
    proc = ServeProcess(tmp_path / "run", signed_artifacts.trained, signed_artifacts.public_key,
                        GUARDRAILS, extra_args=("--no-guardrails",)).wait_ready()
    try:
        for _ in range(3):  # over the 4-token budget, a denied pattern and a foreign tool
            status, _, reply = http_post_json(proc.url + "/v1/generate",
                                              {"prompt": "5 9 13", "tools": [{"name": "shell"}]})
            assert status == 200 and reply["completion"] == "1 5 9 13"
        _, _, raw = http_get(proc.url + "/metrics")
        samples = [s for family in text_string_to_metric_families(raw.decode()) for s in family.samples]
        requests = {s.labels["code"]: s.value for s in samples if s.name == "tugboat_requests_total"}
        decisions = [s.value for s in samples if s.name == "tugboat_guardrail_decisions_total"]
        assert requests == {"200": 3.0, "500": 0.0}
        assert decisions and set(decisions) == {0.0}
        assert not proc.audit_path.exists()
    finally:
        assert proc.stop() == 0
