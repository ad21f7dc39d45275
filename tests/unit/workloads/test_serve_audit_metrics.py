"""Audit records (prompt hashed, never stored), metric exposition and router-health arithmetic."""

import hashlib
import hmac
import json

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tugboat_workloads.serve.audit_key import AuditKey, AuditKeyError, load_audit_key
from tugboat_workloads.serve.audit_log import AuditLog, build_audit_record
from tugboat_workloads.serve.metrics import Identity, ServeMetrics
from tugboat_workloads.serve.onnx_model import load_imbalance

PROMPT = "3 7 11 tenant-secret"
KEY = AuditKey(b"k" * 32, ephemeral=False)


def record_for(prompt, key=KEY):
    return build_audit_record(request_id="r-1", tenant="acme", cost_center="cc-1", caller="ci",
                              prompt=prompt,
                              key=key, decision="deny", guardrail="prompt_filter",
                              reason="PromptDenied", status=400, tokens=0, model=None, release="r1",
                              track="canary", timestamp=1.5)


def test_audit_record_holds_the_prompt_digest_not_the_prompt(tmp_path):
    record = record_for(PROMPT)
    assert record["promptHmacSha256"] == hmac.new(b"k" * 32, PROMPT.encode(), hashlib.sha256).hexdigest()
    log = AuditLog(str(tmp_path / "audit.jsonl"))
    log.write(record)
    log.write({**record, "requestId": "r-2"})
    log.close()
    text = (tmp_path / "audit.jsonl").read_text()
    assert "tenant-secret" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["requestId"] for line in lines] == ["r-1", "r-2"]
    assert lines[0] | {"requestId": "r-1"} == record


def test_a_guesser_hashing_candidate_prompts_cannot_match_the_digest():
    # Every prompt of this task is a few small integers: a plain SHA-256 is a table lookup away.
    table = {hashlib.sha256(f"{a} {b} {c}".encode()).hexdigest()
             for a in range(16) for b in range(16) for c in range(16)}
    digest = record_for("3 7 11")["promptHmacSha256"]
    assert digest not in table
    other_tenant = AuditKey(b"o" * 32, ephemeral=False)
    assert record_for("3 7 11", other_tenant)["promptHmacSha256"] != digest
    assert record_for(None)["promptHmacSha256"] is None


def test_the_key_id_names_the_key_without_revealing_it():
    record = record_for(PROMPT)
    assert record["auditKeyId"] == KEY.key_id == AuditKey(b"k" * 32, ephemeral=False).key_id
    assert record["auditKeyId"] != AuditKey(b"o" * 32, ephemeral=False).key_id
    assert "k" * 8 not in json.dumps(record) and "kkkk" not in repr(KEY)


def test_audit_key_file_is_read_without_its_trailing_newline(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"a" * 64 + b"\n")
    key = load_audit_key(str(path))
    assert (key.secret, key.ephemeral) == (b"a" * 64, False)


def test_without_a_key_file_each_process_draws_its_own_key(tmp_path):
    first, second = load_audit_key(None), load_audit_key(str(tmp_path / "not-mounted"))
    assert first.ephemeral and second.ephemeral
    assert len(first.secret) == 32 and first.secret != second.secret


@pytest.mark.parametrize("content, message", [(b"short\n", "has 5 bytes, at least 32"),
                                              (b"", "has 0 bytes")])
def test_a_weak_key_file_is_refused(tmp_path, content, message):
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(AuditKeyError, match=message):
        load_audit_key(str(path))


def samples(metrics):
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_every_series_carries_the_deployment_labels_and_decisions_start_at_zero():
    metrics = ServeMetrics(Identity("r1", "canary", "acme", "agent"))
    base = {"release": "r1", "track": "canary", "tenant": "acme", "agent_deployment": "agent"}
    before = samples(metrics)
    assert before[("tugboat_guardrail_decisions_total",
                   tuple(sorted({**base, "guardrail": "token_budget", "decision": "deny"}.items())))] == 0
    metrics.request_done(429, 0.003)
    metrics.decision("token_budget", "deny")
    metrics.tokens(4)
    metrics.score(0.75)
    metrics.router_health(1.25, 0.9)
    after = samples(metrics)
    assert all(set(base.items()) <= set(dict(labels).items()) for (_, labels) in after)
    key = lambda name, **extra: (name, tuple(sorted({**base, **extra}.items())))  # noqa: E731
    assert after[key("tugboat_requests_total", code="429")] == 1
    assert after[key("tugboat_guardrail_decisions_total", guardrail="token_budget", decision="deny")] == 1
    assert after[key("tugboat_tokens_total")] == 4
    assert after[key("tugboat_success_score_bucket", le="0.7")] == 0
    assert after[key("tugboat_success_score_bucket", le="0.8")] == 1
    assert after[key("tugboat_request_latency_seconds_bucket", le="0.005")] == 1
    assert after[key("tugboat_router_expert_load_imbalance")] == 1.25
    assert after[key("tugboat_router_entropy")] == 0.9


@pytest.mark.parametrize("load, imbalance", [
    ([[0.25, 0.25, 0.25, 0.25]], 1.0),
    ([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], 2.0),
    ([[0.7, 0.1, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1]], 2.8),
    ([[0.0, 0.0]], 0.0),
])
def test_load_imbalance_is_the_worst_layers_max_over_mean(load, imbalance):
    assert load_imbalance(np.asarray(load, dtype=np.float32)) == pytest.approx(imbalance, rel=1e-6)
