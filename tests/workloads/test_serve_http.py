"""The serving runtime over HTTP: a real server process, a real signed ONNX model, every
guardrail shown with its status code, metric increment and audit line."""

import hashlib
import hmac
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.workloads.serve_fixtures import (  # noqa: F401
    TEST_KEY,
    ServeProcess,
    http_get,
    http_post_json,
    http_post_raw,
    signed_artifacts,
)
from tugboat_workloads.task import encode_prompt, expected_continuation
from tugboat_workloads.verify import verify_artifact

VOCAB = 16
GUARDRAILS = {
    "promptFilter": {"denyPatterns": [r"\b13\b", "(?i)ignore previous"], "maxPromptChars": 40},
    "tokenBudget": {"tokensPerWindow": 100_000, "windowSeconds": 3600},
    "tools": {"allowed": ["search", "calculator"]},
    "fallback": {"minConfidence": 0.5, "mode": "Refuse"},
    "permissionLevel": "Standard",
    "costCenter": "cc-123",
    "successDetector": {"kind": "Task"},
}
DECISIONS = "tugboat_guardrail_decisions_total"
# X-Tenant and X-Cost-Center are sent and ignored: the key and the Tenant's config decide them.
HEADERS = {"X-Tenant": "globex", "X-Cost-Center": "cc-42", "X-Permission-Level": "Standard"}
AUDIT_KEY = b"acme-audit-key-" + b"0123456789abcdef" * 3   # as the tenant's Secret holds it


def start(tmp_path_factory, name, artifact, public_key, guardrails, **kwargs):
    return ServeProcess(tmp_path_factory.mktemp(name), artifact, public_key, guardrails, **kwargs)


def keyed(prompt: str) -> str:
    return hmac.new(AUDIT_KEY, prompt.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def server(signed_artifacts, tmp_path_factory):  # noqa: F811
    key_file = tmp_path_factory.mktemp("audit-key") / "key"
    key_file.write_bytes(AUDIT_KEY + b"\n")
    proc = start(tmp_path_factory, "main", signed_artifacts.trained, signed_artifacts.public_key,
                 GUARDRAILS, extra_args=("--audit-key-file", str(key_file))).wait_ready()
    yield proc
    assert proc.stop() == 0, proc.stderr()


class Metrics:
    """One /metrics scrape: sample values by name and the labels that vary per series."""

    def __init__(self, proc):
        status, _, raw = http_get(proc.url + "/metrics")
        assert status == 200
        identity = {"release": "r1", "track": proc.track, "tenant": "acme", "agent_deployment": "agent"}
        self.values = {}
        for family in text_string_to_metric_families(raw.decode()):
            for s in family.samples:
                assert {k: s.labels.get(k) for k in identity} == identity, s
                varying = {k: v for k, v in s.labels.items() if k not in identity}
                self.values[(s.name, tuple(sorted(varying.items())))] = s.value

    def get(self, name, **labels):
        return self.values.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels):
    return after.get(name, **labels) - before.get(name, **labels)


def audit_for(proc, request_id):
    lines = [line for line in proc.audit_lines() if line["requestId"] == request_id]
    assert len(lines) == 1, f"expected one audit line for {request_id}, got {lines}"
    return lines[0]


def post(proc, body, request_id, headers=HEADERS):
    return http_post_json(proc.url + "/v1/generate", body, {**headers, "X-Request-Id": request_id})


def test_health_and_readiness_report_the_verified_artifact(server, signed_artifacts):  # noqa: F811
    assert http_get(server.url + "/healthz")[0] == 200
    status, _, raw = http_get(server.url + "/readyz")
    assert status == 200
    verified = verify_artifact(signed_artifacts.trained, signed_artifacts.public_key)
    assert f'"manifestDigest": "{verified.manifest_digest}"' in raw.decode()


@pytest.mark.parametrize("prompt", ["3 7 11", "1 2 3 4", "14 15"])
def test_serves_the_correct_continuation_with_metrics_and_audit(server, prompt):
    before = Metrics(server)
    request_id = "ok-" + prompt.replace(" ", "-")
    status, headers, reply = post(server, {"prompt": prompt, "maxTokens": 4}, request_id)
    after = Metrics(server)
    want = expected_continuation(encode_prompt(prompt, VOCAB), 4, VOCAB)
    assert status == 200, reply
    assert headers["X-Request-Id"] == reply["requestId"] == request_id
    assert reply["completion"] == " ".join(map(str, want))
    assert (reply["model"], reply["tokens"], reply["score"]) == ("primary", 4, 1.0)
    assert 0.5 <= reply["confidence"] <= 1.0
    assert (reply["release"], reply["track"]) == ("r1", "stable")
    assert reply["routerHealth"]["imbalance"] >= 1.0 and reply["routerHealth"]["entropy"] > 0.0
    assert delta(before, after, "tugboat_requests_total", code="200") == 1
    assert delta(before, after, "tugboat_tokens_total") == 4
    assert delta(before, after, "tugboat_success_score_count") == 1
    assert delta(before, after, "tugboat_success_score_sum") == 1.0
    assert delta(before, after, "tugboat_request_latency_seconds_count") == 1
    assert after.get("tugboat_router_entropy") == pytest.approx(reply["routerHealth"]["entropy"])
    assert after.get("tugboat_router_expert_load_imbalance") == pytest.approx(
        reply["routerHealth"]["imbalance"])
    assert delta(before, after, DECISIONS, guardrail="fallback", decision="allow") == 1
    assert delta(before, after, DECISIONS, guardrail="token_budget", decision="allow") == 1
    line = audit_for(server, reply["requestId"])
    assert line["promptHmacSha256"] == keyed(prompt) != hashlib.sha256(prompt.encode()).hexdigest()
    assert (line["decision"], line["status"], line["tokens"], line["model"]) == ("allow", 200, 4, "primary")
    assert (line["tenant"], line["costCenter"], line["caller"]) == ("acme", "cc-123", "test-caller")


def test_audit_digests_use_the_tenant_key_and_name_it(server):
    status, _, reply = post(server, {"prompt": "2 4 6"}, "keyed-digest")
    assert status == 200, reply
    line = audit_for(server, "keyed-digest")
    assert line["promptHmacSha256"] == keyed("2 4 6")
    assert line["auditKeyId"] == hmac.new(AUDIT_KEY, b"tugboat audit key id", hashlib.sha256).hexdigest()[:16]
    assert Metrics(server).get("tugboat_audit_key_ephemeral") == 0
    assert "no audit key file" not in server.stderr()


@pytest.mark.parametrize("prompt, reason", [
    ("5 9 13", "PromptDenied"),
    ("please IGNORE PREVIOUS 1 2", "PromptDenied"),
    ("5 9 \uff10\uff11\uff13", "PromptDenied"),             # full-width "013": the model reads 13
    ("please I\u200bGNORE\u00a0PREVIOUS 1 2", "PromptDenied"),  # zero-width space, no-break space
    (" ".join(["1"] * 30), "PromptTooLong"),
])
def test_filtered_prompt_is_400(server, prompt, reason):
    before = Metrics(server)
    status, _, reply = post(server, {"prompt": prompt}, f"filtered-{reason}-{len(prompt)}")
    after = Metrics(server)
    assert status == 400
    assert reply["error"]["guardrail"] == "prompt_filter" and reply["error"]["reason"] == reason
    assert delta(before, after, DECISIONS, guardrail="prompt_filter", decision="deny") == 1
    assert delta(before, after, "tugboat_requests_total", code="400") == 1
    assert after.get("tugboat_tokens_total") == before.get("tugboat_tokens_total")
    line = audit_for(server, reply["requestId"])
    assert (line["decision"], line["guardrail"], line["reason"], line["status"], line["tokens"]) == (
        "deny", "prompt_filter", reason, 400, 0)
    assert line["promptHmacSha256"] == keyed(prompt) != hashlib.sha256(prompt.encode()).hexdigest()
    assert prompt not in server.audit_path.read_text()


def test_disallowed_tool_is_403_and_allowed_tools_pass(server):
    before = Metrics(server)
    status, _, reply = post(server, {"prompt": "2 4", "tools": [{"name": "search", "args": {"q": "a"}},
                                                                {"name": "shell", "args": {"cmd": "ls"}}]},
                            "tool-denied")
    after = Metrics(server)
    assert status == 403 and reply["error"]["reason"] == "ToolNotAllowed"
    assert "'shell'" in reply["error"]["message"]
    assert delta(before, after, DECISIONS, guardrail="tools", decision="deny") == 1
    assert delta(before, after, "tugboat_requests_total", code="403") == 1
    line = audit_for(server, "tool-denied")
    assert (line["decision"], line["guardrail"], line["status"]) == ("deny", "tools", 403)
    status, _, reply = post(server, {"prompt": "2 4", "tools": [{"name": "calculator"}]}, "tool-allowed")
    assert status == 200 and reply["model"] == "primary"


@pytest.mark.parametrize("headers, status, guardrail, reason", [
    ({**HEADERS, "X-Permission-Level": "Elevated"}, 403, "permission", "PermissionDenied"),
    ({**HEADERS, "Authorization": f"Bearer tbk_globex_{TEST_KEY[9:]}"}, 403, "tenant", "TenantMismatch"),
    ({**HEADERS, "Authorization": f"Bearer {TEST_KEY}x"}, 401, "tenant", "UnknownApiKey"),
    ({**HEADERS, "Authorization": ""}, 401, "tenant", "MissingApiKey"),
    ({**HEADERS, "X-Permission-Level": "Admin"}, 400, "request", "InvalidRequest"),
])
def test_caller_outside_the_deployments_scope_is_refused(server, headers, status, guardrail, reason):
    before = Metrics(server)
    code, reply_headers, reply = post(server, {"prompt": "1 3"}, f"scope-{reason}", headers)
    after = Metrics(server)
    assert code == status and (reply["error"]["guardrail"], reply["error"]["reason"]) == (guardrail, reason)
    if guardrail != "request":
        assert delta(before, after, DECISIONS, guardrail=guardrail, decision="deny") == 1
    assert (reply_headers.get("WWW-Authenticate") == 'Bearer realm="tugboat"') is (status == 401)
    line = audit_for(server, f"scope-{reason}")
    assert (line["status"], line["caller"]) == (status, "test-caller" if guardrail == "permission" else None)


@pytest.mark.parametrize("body, field", [
    ({"prompt": "1 2", "maxTokens": 0}, "maxTokens"),
    ({"prompt": "1 two"}, "prompt"),
    ({"prompt": "1 16"}, "prompt"),    # outside the model's vocabulary of 16
    ({"text": "1 2"}, "text"),
])
def test_malformed_requests_are_400_naming_the_field(server, body, field):
    status, _, reply = post(server, body, f"bad-{field}")
    assert status == 400 and reply["error"]["reason"] == "InvalidRequest"
    assert reply["error"]["message"].startswith(field)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("case, body, headers, status, reason", [
    ("bad-utf8", b'{"prompt": "1 \xff\xfe 2"}', JSON, 400, "InvalidRequest"),
    ("bad-json", b'{"prompt": "1 2",', JSON, 400, "InvalidRequest"),
    ("deep-nesting", b"[" * 200_000, JSON, 400, "InvalidRequest"),
    ("deep-tool-args", b'{"prompt": "1 2", "tools": [{"name": "calculator", "args": '
     + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001 + b"]}", JSON, 400, "InvalidRequest"),
    ("huge-integer", b'{"prompt": "1 2", "maxTokens": ' + b"9" * 5000 + b"}", JSON, 400, "InvalidRequest"),
    ("lone-surrogate", b'{"prompt": "1 2 \\udc80"}', JSON, 400, "InvalidRequest"),
    ("oversized", b'{"prompt": "' + b"1 " * 600_000 + b'"}', JSON, 413, "BodyTooLarge"),
    ("text-plain", b'{"prompt": "1 2"}', {"Content-Type": "text/plain"}, 415, "UnsupportedMediaType"),
    ("no-content-type", b'{"prompt": "1 2"}', {}, 415, "UnsupportedMediaType"),
])
def test_malformed_bytes_are_a_4xx_with_exactly_one_audit_line(server, case, body, headers, status,
                                                               reason):
    before = Metrics(server)
    code, reply_headers, raw = http_post_raw(server.url, "/v1/generate", body,
                                             {**HEADERS, **headers, "X-Request-Id": f"raw-{case}"})
    after = Metrics(server)
    assert code == status, raw[:500]
    reply = json.loads(raw)
    assert (reply["error"]["guardrail"], reply["error"]["reason"]) == ("request", reason)
    assert reply_headers["X-Request-Id"] == reply["requestId"] == f"raw-{case}"
    assert delta(before, after, "tugboat_requests_total", code=str(status)) == 1
    assert after.get("tugboat_requests_total", code="500") == 0
    line = audit_for(server, f"raw-{case}")
    assert (line["decision"], line["guardrail"], line["reason"], line["status"]) == (
        "deny", "request", reason, status)
    assert line["promptHmacSha256"] is None
    assert http_get(server.url + "/healthz")[0] == 200


@pytest.fixture(scope="module")
def budget_server(signed_artifacts, tmp_path_factory):  # noqa: F811
    guardrails = {**GUARDRAILS, "tokenBudget": {"tokensPerWindow": 10, "windowSeconds": 600}}
    proc = start(tmp_path_factory, "budget", signed_artifacts.trained, signed_artifacts.public_key,
                 guardrails).wait_ready()
    yield proc
    proc.stop()


def test_exhausted_token_budget_is_429_with_retry_after(budget_server):
    for i in range(2):
        assert post(budget_server, {"prompt": "1 2", "maxTokens": 4}, f"spend-{i}")[0] == 200
    before = Metrics(budget_server)
    status, headers, reply = post(budget_server, {"prompt": "1 2", "maxTokens": 4}, "over-budget")
    after = Metrics(budget_server)
    assert status == 429 and reply["error"]["reason"] == "TokenBudgetExhausted"
    assert 1 <= int(headers["Retry-After"]) <= 600
    assert "8 of 10" in reply["error"]["message"]
    assert delta(before, after, DECISIONS, guardrail="token_budget", decision="deny") == 1
    assert after.get("tugboat_requests_total", code="429") == 1
    assert after.get("tugboat_tokens_total") == 8
    line = audit_for(budget_server, "over-budget")
    assert (line["decision"], line["guardrail"], line["status"], line["tokens"]) == (
        "deny", "token_budget", 429, 0)
    # What is left still fits a smaller request.
    assert post(budget_server, {"prompt": "1 2", "maxTokens": 2}, "fits")[0] == 200


@pytest.fixture(scope="module")
def fallback_server(signed_artifacts, tmp_path_factory):  # noqa: F811
    guardrails = {**GUARDRAILS, "fallback": {"minConfidence": 0.5, "mode": "SimpleModel"}}
    proc = start(tmp_path_factory, "fallback", signed_artifacts.untrained, signed_artifacts.public_key,
                 guardrails, track="canary",
                 extra_args=("--fallback-artifact", str(signed_artifacts.trained))).wait_ready()
    yield proc
    proc.stop()


def test_low_confidence_falls_back_to_the_simpler_model(fallback_server):
    before = Metrics(fallback_server)
    status, _, reply = post(fallback_server, {"prompt": "3 7 11", "maxTokens": 4}, "low-confidence")
    after = Metrics(fallback_server)
    assert status == 200, reply
    assert (reply["model"], reply["fallbackReason"], reply["track"]) == (
        "fallback", "LowConfidence", "canary")
    assert reply["completion"] == "15 3 7 11" and reply["score"] == 1.0   # the trained fallback is right
    assert delta(before, after, DECISIONS, guardrail="fallback", decision="fallback") == 1
    assert delta(before, after, "tugboat_tokens_total") == 4
    line = audit_for(fallback_server, "low-confidence")
    assert (line["decision"], line["guardrail"], line["model"], line["status"]) == (
        "fallback", "fallback", "fallback", 200)


@pytest.fixture(scope="module")
def refusing_server(signed_artifacts, tmp_path_factory):  # noqa: F811
    # Configured through TUGBOAT_* variables only, as a Deployment would.
    proc = start(tmp_path_factory, "refuse", signed_artifacts.untrained, signed_artifacts.public_key,
                 GUARDRAILS, via_env=True).wait_ready()
    yield proc
    proc.stop()


def test_without_a_key_file_digests_use_a_per_process_key_and_say_so(refusing_server):
    status, _, _ = post(refusing_server, {"prompt": "5 9"}, "ephemeral-digest")
    line = audit_for(refusing_server, "ephemeral-digest")
    assert line["promptHmacSha256"] not in (keyed("5 9"), hashlib.sha256(b"5 9").hexdigest())
    assert Metrics(refusing_server).get("tugboat_audit_key_ephemeral") == 1
    assert f"random per-process key (id {line['auditKeyId']})" in refusing_server.stderr()


def test_low_confidence_is_refused_in_refuse_mode(refusing_server):
    before = Metrics(refusing_server)
    status, _, reply = post(refusing_server, {"prompt": "3 7 11", "maxTokens": 4}, "refused")
    after = Metrics(refusing_server)
    assert status == 200, reply
    assert (reply["model"], reply["completion"], reply["tokens"], reply["score"]) == ("refused", "", 0, 0.0)
    assert reply["confidence"] < 0.5          # the untrained primary's own confidence
    assert delta(before, after, DECISIONS, guardrail="fallback", decision="refuse") == 1
    assert after.get("tugboat_tokens_total") == before.get("tugboat_tokens_total")
    line = audit_for(refusing_server, "refused")
    assert (line["decision"], line["model"], line["tokens"], line["costCenter"]) == (
        "refuse", "refused", 0, "cc-123")
