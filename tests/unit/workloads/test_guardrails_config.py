"""Guardrails JSON parsing: defaults, accepted shapes and errors that name the field."""

import json

import pytest

from tugboat_workloads.serve.guardrail_config import (
    GuardrailConfig,
    GuardrailConfigError,
    load_guardrail_config,
    parse_guardrail_config,
)

FULL = {
    "promptFilter": {"denyPatterns": ["(?i)drop table", "secret"], "maxPromptChars": 64},
    "tokenBudget": {"tokensPerWindow": 50, "windowSeconds": 30},
    "tools": {"allowed": ["search", "calculator"]},
    "fallback": {"minConfidence": 0.7, "minScore": 0.5, "mode": "SimpleModel"},
    "permissionLevel": "Elevated",
    "costCenter": "cc-123",
    "successDetector": {"kind": "Regex", "pattern": r"^\d+( \d+)*$"},
}


def test_full_document_parses_every_field():
    config = parse_guardrail_config(FULL)
    assert [p.pattern for p in config.prompt_filter.deny_patterns] == ["(?i)drop table", "secret"]
    assert config.prompt_filter.max_prompt_chars == 64
    assert (config.token_budget.tokens_per_window, config.token_budget.window_seconds) == (50, 30.0)
    assert config.allowed_tools == {"search", "calculator"}
    assert (config.fallback.min_confidence, config.fallback.min_score, config.fallback.mode) == (
        0.7, 0.5, "SimpleModel")
    assert (config.permission_level, config.cost_center) == ("Elevated", "cc-123")
    assert (config.success_detector.kind, config.success_detector.pattern) == ("Regex", r"^\d+( \d+)*$")


def test_empty_document_gets_the_operator_api_defaults():
    config = parse_guardrail_config({})
    assert config == GuardrailConfig()
    assert config.permission_level == "Standard"
    assert config.fallback.mode == "Refuse" and config.fallback.min_confidence == 0.5
    assert config.success_detector.kind == "Task"
    assert config.allowed_tools == frozenset()


def test_schema_may_be_json_text_as_the_operator_api_carries_it():
    config = parse_guardrail_config({"successDetector": {"kind": "JsonSchema",
                                                         "schema": '{"type": "object"}'}})
    assert config.success_detector.schema == {"type": "object"}


@pytest.mark.parametrize("doc, field", [
    ([], "(root)"),
    ({"promptFiltre": {}}, "promptFiltre"),
    ({"promptFilter": {"denyPatterns": ["ok", "("]}}, "promptFilter.denyPatterns[1]"),
    ({"promptFilter": {"denyPatterns": ["(?!ok)"]}}, "promptFilter.denyPatterns[0]"),  # not RE2
    ({"promptFilter": {"denyPatterns": "secret"}}, "promptFilter.denyPatterns"),
    ({"promptFilter": {"maxPromptChars": 0}}, "promptFilter.maxPromptChars"),
    ({"promptFilter": {"maxPromptChars": 10.5}}, "promptFilter.maxPromptChars"),
    ({"tokenBudget": {"tokensPerWindow": True}}, "tokenBudget.tokensPerWindow"),
    ({"tokenBudget": {"windowSeconds": -1}}, "tokenBudget.windowSeconds"),
    ({"tools": {"allowed": ["search", 3]}}, "tools.allowed[1]"),
    ({"tools": {"denied": []}}, "tools.denied"),
    ({"fallback": {"minConfidence": 1.5}}, "fallback.minConfidence"),
    ({"fallback": {"mode": "Retry"}}, "fallback.mode"),
    ({"permissionLevel": "Root"}, "permissionLevel"),
    ({"costCenter": 123}, "costCenter"),
    ({"successDetector": {"kind": "Vibes"}}, "successDetector.kind"),
    ({"successDetector": {"kind": "Regex"}}, "successDetector.pattern"),
    ({"successDetector": {"kind": "JsonSchema"}}, "successDetector.schema"),
    ({"successDetector": {"kind": "JsonSchema", "schema": "{not json"}}, "successDetector.schema"),
    ({"successDetector": {"kind": "JsonSchema", "schema": [1]}}, "successDetector.schema"),
    ({"successDetector": {"kind": "Reference"}}, "successDetector.reference"),
    ({"successDetector": {"kind": "Reference", "reference": "1", "match": "fuzzy"}},
     "successDetector.match"),
])
def test_bad_values_name_the_field(doc, field):
    with pytest.raises(GuardrailConfigError) as err:
        parse_guardrail_config(doc)
    assert err.value.field == field
    assert field in str(err.value)


def test_load_reads_a_file_and_names_it_when_broken(tmp_path):
    good = tmp_path / "guardrails.json"
    good.write_text(json.dumps(FULL))
    assert load_guardrail_config(good).cost_center == "cc-123"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(GuardrailConfigError, match="broken.json is not valid JSON"):
        load_guardrail_config(broken)
    with pytest.raises(GuardrailConfigError, match="missing.json"):
        load_guardrail_config(tmp_path / "missing.json")
