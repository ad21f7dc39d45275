"""Stateless guardrails: prompt filter, tenant, permission level, tools, the admission chain and
the fallback decision."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tugboat_workloads.serve.admission import admit
from tugboat_workloads.serve.caller_access import check_permission, check_tools, identify
from tugboat_workloads.serve.caller_keys import ApiKey, ApiKeys, key_digest
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
    verdict = check_permission(requested, ApiKey("ci", "Elevated"), maximum)
    assert verdict.denied is denied
    assert verdict.status == (403 if denied else 200)
    # The key's own level is a ceiling too.
    keyed = check_permission(requested, ApiKey("ci", maximum), "Elevated")
    assert keyed.denied is denied
    if denied:
        assert f"API key 'ci''s level {maximum}" in keyed.message


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


ACME_KEY = "tbk_acme_" + "s" * 43
KEYS = ApiKeys({key_digest(ACME_KEY): ApiKey("ci", "Standard")})


@pytest.mark.parametrize("authorization, status, reason", [
    (None, 401, "MissingApiKey"),
    ("Basic dXNlcjpwdw==", 401, "MissingApiKey"),
    ("Bearer", 401, "MissingApiKey"),
    ("Bearer tbk_acme_" + "x" * 43, 401, "UnknownApiKey"),   # right tenant, not a key it issued
    ("Bearer not-a-tugboat-key", 401, "UnknownApiKey"),
    ("Bearer tbk_globex_" + "s" * 43, 403, "TenantMismatch"),
])
def test_no_or_an_unknown_key_is_401_and_another_tenants_is_403(authorization, status, reason):
    verdict, key = identify(authorization, KEYS, "acme")
    assert (verdict.status, verdict.reason, key) == (status, reason, None)
    assert verdict.guardrail == "tenant"


def test_a_key_of_this_tenant_identifies_the_caller():
    for header in (f"Bearer {ACME_KEY}", f"bearer   {ACME_KEY} "):
        verdict, key = identify(header, KEYS, "acme")
        assert not verdict.denied and key == ApiKey("ci", "Standard")


def test_without_a_keys_file_no_key_is_valid_and_the_401_says_why():
    verdict, key = identify(f"Bearer {ACME_KEY}", ApiKeys(missing="no keys file at /k"), "acme")
    assert (verdict.status, key) == (401, None) and "no keys file at /k" in verdict.message


def _request(**overrides):
    values = dict(prompt="3 7 11", max_tokens=4, tools=(), authorization=f"Bearer {ACME_KEY}",
                  permission_level="ReadOnly")
    values.update(overrides)
    return GenerateRequest(**values)


CONFIG = parse_guardrail_config({"promptFilter": {"denyPatterns": ["secret"]},
                                 "tools": {"allowed": ["search"]}, "permissionLevel": "Standard"})


@pytest.mark.parametrize("overrides, trail", [
    ({}, ["tenant", "permission", "tools", "prompt_filter"]),
    ({"authorization": None, "prompt": "secret"}, ["tenant"]),
    ({"permission_level": "Elevated", "tools": ("shell",)}, ["tenant", "permission"]),
    ({"tools": ("shell",), "prompt": "secret"}, ["tenant", "permission", "tools"]),
    ({"prompt": "my secret"}, ["tenant", "permission", "tools", "prompt_filter"]),
])
def test_admission_chain_stops_at_the_first_denial(overrides, trail):
    admission = admit(_request(**overrides), CONFIG, "acme", KEYS)
    verdicts = admission.verdicts
    assert [v.guardrail for v in verdicts] == trail
    assert all(not v.denied for v in verdicts[:-1])
    assert verdicts[-1].denied is (overrides != {})
    assert (admission.denial is None) is (overrides == {})
    assert admission.caller == (None if trail == ["tenant"] else ApiKey("ci", "Standard"))


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
