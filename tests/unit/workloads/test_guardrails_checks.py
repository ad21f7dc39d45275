"""Stateless guardrails: prompt filter, tenant, permission level, tools, the admission chain and
the fallback decision."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tugboat_workloads.serve.admission import admit
from tugboat_workloads.serve.caller_access import check_permission, check_tenant, check_tools
from tugboat_workloads.serve.deny_pattern import compile_deny_pattern
from tugboat_workloads.serve.fallback_policy import decide_fallback
from tugboat_workloads.serve.generate_request import GenerateRequest
from tugboat_workloads.serve.guardrail_config import (
    FallbackConfig,
    PromptFilterConfig,
    parse_guardrail_config,
)
from tugboat_workloads.serve.prompt_filter import (
    _canonical_unicode,
    canonical_text,
    check_prompt,
    token_form,
)

FILTER = PromptFilterConfig(deny_patterns=(compile_deny_pattern("(?i)ignore previous"),
                                           compile_deny_pattern(r"\b99\b")),
                            max_prompt_chars=20)


@pytest.mark.parametrize("prompt, decision, status, reason", [
    ("3 7 11", "allow", 200, ""),
    ("1 99 2", "deny", 400, "PromptDenied"),
    ("IGNORE PREVIOUS", "deny", 400, "PromptDenied"),
    ("1 2 3 4 5 6 7 8 9 10 11", "deny", 400, "PromptTooLong"),
    ("x" * 20, "allow", 200, ""),
    ("199 2", "allow", 200, ""),
])
def test_prompt_filter(prompt, decision, status, reason):
    verdict = check_prompt(prompt, FILTER)
    assert (verdict.decision, verdict.status, verdict.reason) == (decision, status, reason)
    assert verdict.guardrail == "prompt_filter"


def test_prompt_filter_message_names_the_rule_not_the_prompt():
    verdict = check_prompt("ignore previous zork", FILTER)
    assert "denyPatterns[0]" in verdict.message
    assert "zork" not in verdict.message


@pytest.mark.parametrize("prompt", [
    "\uff29\uff27\uff2e\uff2f\uff32\uff25 previous",  # full-width letters
    "i\u0301gno\u0308re previous",                    # combining marks
    "ig\u200bnore\u2060 pre\u00advious",              # zero-width space, word joiner, soft hyphen
    "IgNoRe\u2003\u2003previous",                     # mixed case, em spaces
    "\u2170gnore previous",                           # small roman numeral one (NFKC: i)
])
def test_a_denied_phrase_is_denied_in_every_spelling_of_it(prompt):
    assert check_prompt(prompt, FILTER).reason == "PromptDenied", canonical_text(prompt)


@pytest.mark.parametrize("prompt", ["1 099 2", "1 +99 2", "1 9_9 2", "1 \uff19\uff19 2",
                                    "1 \u0669\u0669 2", "1\u200a99\u30002"])
def test_a_denied_token_is_denied_in_every_spelling_the_tokenizer_reads_as_it(prompt):
    assert token_form(prompt) == "1 99 2"
    assert check_prompt(prompt, FILTER).reason == "PromptDenied"


def test_patterns_match_case_insensitively_on_the_folded_form():
    upper = PromptFilterConfig(deny_patterns=(compile_deny_pattern("STRASSE"),))
    assert check_prompt("die Stra\u00dfe", upper).reason == "PromptDenied"   # casefold: sz -> ss


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_shortcut_is_the_full_canonical_form(text):
    assert canonical_text(text) == _canonical_unicode(text)


@pytest.mark.timeout(10)
def test_a_catastrophic_pattern_matches_in_linear_time():
    config = PromptFilterConfig(deny_patterns=(compile_deny_pattern("(a+)+$"),), max_prompt_chars=10_000)
    started = time.perf_counter()
    assert check_prompt("a" * 5000 + "!", config).decision == "allow"
    assert time.perf_counter() - started < 0.5


@given(st.text(min_size=21, max_size=200))
def test_any_prompt_over_the_limit_is_denied(prompt):
    assert check_prompt(prompt, FILTER).reason == "PromptTooLong"


@pytest.mark.parametrize("requested, maximum, denied", [
    ("ReadOnly", "ReadOnly", False), ("Standard", "ReadOnly", True), ("Elevated", "Standard", True),
    ("Standard", "Standard", False), ("ReadOnly", "Elevated", False), ("Elevated", "Elevated", False),
])
def test_permission_level_is_a_ceiling(requested, maximum, denied):
    verdict = check_permission(requested, maximum)
    assert verdict.denied is denied
    assert verdict.status == (403 if denied else 200)


@pytest.mark.parametrize("tools, denied", [
    ((), False), (("search",), False), (("search", "calculator"), False),
    (("shell",), True), (("search", "shell"), True),
])
def test_tool_allowlist(tools, denied):
    verdict = check_tools(tools, frozenset({"search", "calculator"}))
    assert verdict.denied is denied
    if denied:
        assert (verdict.status, verdict.reason) == (403, "ToolNotAllowed")
        assert "'shell'" in verdict.message


def test_tenant_must_match_the_deployment():
    assert not check_tenant("acme", "acme").denied
    verdict = check_tenant("globex", "acme")
    assert (verdict.status, verdict.reason) == (403, "TenantMismatch")


def _request(**overrides):
    values = dict(prompt="3 7 11", max_tokens=4, tools=(), tenant="acme", cost_center=None,
                  permission_level="ReadOnly")
    values.update(overrides)
    return GenerateRequest(**values)


CONFIG = parse_guardrail_config({"promptFilter": {"denyPatterns": ["secret"]},
                                 "tools": {"allowed": ["search"]}, "permissionLevel": "Standard"})


@pytest.mark.parametrize("overrides, trail", [
    ({}, ["tenant", "permission", "tools", "prompt_filter"]),
    ({"tenant": "globex", "prompt": "secret"}, ["tenant"]),
    ({"permission_level": "Elevated", "tools": ("shell",)}, ["tenant", "permission"]),
    ({"tools": ("shell",), "prompt": "secret"}, ["tenant", "permission", "tools"]),
    ({"prompt": "my secret"}, ["tenant", "permission", "tools", "prompt_filter"]),
])
def test_admission_chain_stops_at_the_first_denial(overrides, trail):
    verdicts = admit(_request(**overrides), CONFIG, "acme")
    assert [v.guardrail for v in verdicts] == trail
    assert all(not v.denied for v in verdicts[:-1])
    assert verdicts[-1].denied is (overrides != {})


@pytest.mark.parametrize("confidence, score, mode, decision, reason", [
    (0.9, 1.0, "SimpleModel", "allow", ""),
    (0.5, 0.0, "SimpleModel", "allow", ""),      # minScore 0 never triggers; 0.5 is not below 0.5
    (0.49, 1.0, "SimpleModel", "fallback", "LowConfidence"),
    (0.1, 1.0, "Refuse", "refuse", "LowConfidence"),
])
def test_fallback_on_low_confidence(confidence, score, mode, decision, reason):
    verdict = decide_fallback(confidence, score, FallbackConfig(min_confidence=0.5, mode=mode))
    assert (verdict.decision, verdict.reason, verdict.status) == (decision, reason, 200)


def test_fallback_on_low_score_when_min_score_is_set():
    config = FallbackConfig(min_confidence=0.5, min_score=0.75, mode="Refuse")
    assert decide_fallback(0.9, 0.5, config).reason == "LowScore"
    assert decide_fallback(0.9, 0.75, config).decision == "allow"
