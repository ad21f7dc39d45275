"""The serving runtime's window counters with a real signed ONNX model: router counts summed
over every forward pass (checked against ONNX Runtime run by the test itself), generated tokens,
latency per token, and the dev-only fault injection that only the process's flags switch on."""

import math
import time

import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workloads.serve_fixtures import (
    TINY_MODEL,
    ServeProcess,
    http_get,
    http_post_json,
    signed_artifacts,  # noqa: F401
)
from tugboat_workloads.task import encode_prompt

LAYERS, EXPERTS, SEQ = TINY_MODEL["layers"], TINY_MODEL["experts"], TINY_MODEL["seqLen"]
PROMPT, MAX_TOKENS = "1 3 5 7 9 11 13 15 1 3 5 7 9 11", 4  # 14 tokens: the window hits seqLen


def scrape(proc) -> dict:
    status, _, raw = http_get(proc.url + "/metrics")
    assert status == 200
    base = {"release", "track", "tenant", "agent_deployment"}
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in base))): s.value
            for family in text_string_to_metric_families(raw.decode()) for s in family.samples}


def router_counts(metrics: dict) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.zeros((LAYERS, EXPERTS))
    entropy = np.zeros(LAYERS)
    for (name, labels), value in metrics.items():
        labels = dict(labels)
        if name == "tugboat_router_expert_tokens_total":
            tokens[int(labels["layer"]), int(labels["expert"])] = value
        elif name == "tugboat_router_entropy_nats_total":
            entropy[int(labels["layer"])] = value
    return tokens, entropy


def expected_router_counts(artifact, prompt_tokens: list[int], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The test's own greedy loop over the signed model.onnx: every pass, its whole window."""
    session = ort.InferenceSession(str(artifact / "model.onnx"), providers=["CPUExecutionProvider"])
    context, tokens, entropy = list(prompt_tokens), np.zeros((LAYERS, EXPERTS)), np.zeros(LAYERS)
    for _ in range(steps):
        window = np.asarray([context[-SEQ:]], dtype=np.int64)
        logits, load, gate_entropy = session.run(["logits", "expert_load", "router_entropy"],
                                                 {"tokens": window})
        tokens += load * window.shape[1]
        entropy += gate_entropy * window.shape[1]
        context.append(int(np.argmax(logits[0, -1])))
    return tokens, entropy


@pytest.fixture(scope="module")
def server(signed_artifacts, tmp_path_factory):  # noqa: F811
    proc = ServeProcess(tmp_path_factory.mktemp("window"), signed_artifacts.trained,
                        signed_artifacts.public_key, None, extra_args=("--no-guardrails",)).wait_ready()
    yield proc
    assert proc.stop() == 0, proc.stderr()


def test_router_series_start_at_zero_and_count_every_forward_pass(server, signed_artifacts):  # noqa: F811
    before = scrape(server)
    tokens0, entropy0 = router_counts(before)
    assert sum(1 for name, _ in before if name == "tugboat_router_expert_tokens_total") == LAYERS * EXPERTS
    assert not tokens0.any() and not entropy0.any()
    body = {"prompt": PROMPT, "maxTokens": MAX_TOKENS}
    status, _, reply = http_post_json(server.url + "/v1/generate", body)
    assert status == 200, reply
    tokens, entropy = router_counts(scrape(server))
    # Windows of 14, 15, 16, 16 positions: every pass counted, each with its own window.
    positions = sum(min(14 + i, SEQ) for i in range(MAX_TOKENS))
    assert tokens.sum(axis=1) == pytest.approx([positions] * LAYERS, rel=1e-5)
    prompt_tokens = encode_prompt(PROMPT, TINY_MODEL["vocabSize"])
    want_tokens, want_entropy = expected_router_counts(signed_artifacts.trained, prompt_tokens, MAX_TOKENS)
    assert tokens == pytest.approx(want_tokens, rel=1e-5, abs=1e-4)
    assert entropy == pytest.approx(want_entropy, rel=1e-5)
    assert 0 < entropy.sum() / tokens.sum() <= math.log(EXPERTS)


def test_generated_tokens_and_latency_per_token(server):
    before = scrape(server)
    started = time.perf_counter()
    status, _, reply = http_post_json(server.url + "/v1/generate", {"prompt": "2 4 6", "maxTokens": 3})
    elapsed = time.perf_counter() - started
    after = scrape(server)
    delta = lambda name: after[(name, ())] - before.get((name, ()), 0.0)  # noqa: E731
    assert status == 200 and reply["tokens"] == 3
    assert delta("tugboat_generated_tokens_total") == 3
    assert delta("tugboat_request_latency_per_token_seconds_count") == 1
    per_token = delta("tugboat_request_latency_per_token_seconds_sum")
    assert per_token == pytest.approx(delta("tugboat_request_latency_seconds_sum") / 3)
    assert 0 < per_token < elapsed / 3


def test_a_request_cannot_switch_faults_on(server):
    status, _, reply = http_post_json(server.url + "/v1/generate",
                                      {"prompt": "2 4 6", "maxTokens": 2},
                                      {"X-Dev-Inject-Error-Rate": "1", "X-Dev-Inject-Latency-Ms": "5000"})
    assert status == 200, reply
    status, _, reply = http_post_json(server.url + "/v1/generate",
                                      {"prompt": "2 4 6", "devInjectErrorRate": 1.0})
    assert status == 400 and reply["error"]["reason"] == "InvalidRequest"


def test_injected_errors_answer_500_and_count_as_errors(signed_artifacts, tmp_path):  # noqa: F811
    proc = ServeProcess(tmp_path / "errors", signed_artifacts.trained, signed_artifacts.public_key, None,
                        extra_args=("--no-guardrails", "--dev-inject-error-rate", "1"),
                        track="canary").wait_ready()
    try:
        status, _, reply = http_post_json(proc.url + "/v1/generate", {"prompt": "2 4 6"})
        metrics = scrape(proc)
        assert "DEV FAULT INJECTION ON: error rate 1.0" in proc.stderr()
    finally:
        assert proc.stop() == 0
    assert status == 500 and reply["error"]["reason"] == "InjectedFault"
    assert metrics[("tugboat_requests_total", (("code", "500"),))] == 1
    assert metrics[("tugboat_requests_total", (("code", "200"),))] == 0
    assert metrics[("tugboat_generated_tokens_total", ())] == 0


def test_injected_latency_delays_every_answer(signed_artifacts, tmp_path):  # noqa: F811
    proc = ServeProcess(tmp_path / "slow", signed_artifacts.trained, signed_artifacts.public_key, None,
                        extra_args=("--no-guardrails",),
                        env={"TUGBOAT_DEV_INJECT_LATENCY_MS": "200"}).wait_ready()
    try:
        started = time.perf_counter()
        status, _, _ = http_post_json(proc.url + "/v1/generate", {"prompt": "2 4 6", "maxTokens": 4})
        elapsed = time.perf_counter() - started
        metrics = scrape(proc)
    finally:
        assert proc.stop() == 0
    assert status == 200 and elapsed >= 0.2
    assert metrics[("tugboat_request_latency_seconds_bucket", (("le", "0.1"),))] == 0
    # 200 ms over 4 tokens: at least 50 ms per token, far over the 20 ms/token SLO.
    assert metrics[("tugboat_request_latency_per_token_seconds_bucket", (("le", "0.04"),))] == 0
