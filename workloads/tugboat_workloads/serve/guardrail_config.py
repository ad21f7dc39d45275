"""Parse the guardrails JSON (written by the operator into a ConfigMap) into frozen settings.

Decides: which keys exist, their types, ranges and defaults (defaults match the operator's
AgentDeployment/Tenant API). Rejects unknown keys and bad values with `GuardrailConfigError`
naming the field path. Must not read files or build scorers: the caller does both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deny_pattern import DenyPatternError, Pattern, compile_deny_pattern

PERMISSION_LEVELS = ("ReadOnly", "Standard", "Elevated")
FALLBACK_MODES = ("SimpleModel", "Refuse")
DETECTOR_KINDS = ("Task", "Regex", "JsonSchema", "Reference")
REFERENCE_MATCHES = ("exact", "partial")
STORE_FAILURE_MODES = ("FailOpen", "FailClosed")


class GuardrailConfigError(ValueError):
    """A guardrails setting is missing, unknown or out of range; `field` is its camelCase path."""

    def __init__(self, field_path: str, message: str):
        super().__init__(f"guardrails config field {field_path}: {message}")
        self.field = field_path


@dataclass(frozen=True)
class PromptFilterConfig:
    deny_patterns: tuple[Pattern, ...] = ()
    max_prompt_chars: int = 2048


@dataclass(frozen=True)
class TokenBudgetConfig:
    tokens_per_window: int = 100_000
    window_seconds: float = 3600.0
    # What a shared budget store outage does to requests (only with a store).
    on_store_unavailable: str = "FailOpen"


@dataclass(frozen=True)
class FallbackConfig:
    min_confidence: float = 0.5
    # Optional and off by default: a success score below it also sends a request to the fallback.
    min_score: float = 0.0
    mode: str = "Refuse"


@dataclass(frozen=True)
class DetectorConfig:
    kind: str = "Task"
    pattern: str | None = None
    schema: dict | None = None
    reference: str | None = None
    match: str = "exact"


@dataclass(frozen=True)
class GuardrailConfig:
    prompt_filter: PromptFilterConfig = field(default_factory=PromptFilterConfig)
    token_budget: TokenBudgetConfig = field(default_factory=TokenBudgetConfig)
    allowed_tools: frozenset[str] = frozenset()
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    permission_level: str = "Standard"
    cost_center: str | None = None
    success_detector: DetectorConfig = field(default_factory=DetectorConfig)


def load_guardrail_config(path: str | Path) -> GuardrailConfig:
    """Read and parse a guardrails JSON file; errors name the file."""
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as err:
        raise GuardrailConfigError("(file)", f"cannot read {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise GuardrailConfigError("(file)", f"{path} is not valid JSON: {err}") from err
    return parse_guardrail_config(raw)


def parse_guardrail_config(raw: Any) -> GuardrailConfig:
    """Validate a decoded guardrails document and fill in defaults."""
    doc = _section(raw, "", {"promptFilter", "tokenBudget", "tools", "fallback",
                             "permissionLevel", "costCenter", "successDetector"})
    cost_center = doc.get("costCenter")
    if cost_center is not None:
        cost_center = _string(cost_center, "costCenter")
    return GuardrailConfig(
        prompt_filter=_prompt_filter(doc.get("promptFilter", {})),
        token_budget=_token_budget(doc.get("tokenBudget", {})),
        allowed_tools=_allowed_tools(doc.get("tools", {})),
        fallback=_fallback(doc.get("fallback", {})),
        permission_level=_choice(doc.get("permissionLevel", "Standard"), "permissionLevel",
                                 PERMISSION_LEVELS),
        cost_center=cost_center,
        success_detector=_detector(doc.get("successDetector", {})),
    )


def _prompt_filter(raw: Any) -> PromptFilterConfig:
    sec = _section(raw, "promptFilter", {"denyPatterns", "maxPromptChars"})
    patterns = _list(sec.get("denyPatterns", []), "promptFilter.denyPatterns")
    compiled = []
    for i, pattern in enumerate(patterns):
        path = f"promptFilter.denyPatterns[{i}]"
        try:
            compiled.append(compile_deny_pattern(_string(pattern, path)))
        except DenyPatternError as err:
            raise GuardrailConfigError(path, f"{pattern!r} is {err}") from err
    max_chars = _number(sec.get("maxPromptChars", 2048), "promptFilter.maxPromptChars",
                        minimum=1, integer=True)
    return PromptFilterConfig(deny_patterns=tuple(compiled), max_prompt_chars=int(max_chars))


def _token_budget(raw: Any) -> TokenBudgetConfig:
    sec = _section(raw, "tokenBudget", {"tokensPerWindow", "windowSeconds", "onStoreUnavailable"})
    tokens = _number(sec.get("tokensPerWindow", 100_000), "tokenBudget.tokensPerWindow",
                     minimum=1, integer=True)
    window = _number(sec.get("windowSeconds", 3600), "tokenBudget.windowSeconds", minimum=1e-3)
    on_unavailable = _choice(sec.get("onStoreUnavailable", "FailOpen"),
                             "tokenBudget.onStoreUnavailable", STORE_FAILURE_MODES)
    return TokenBudgetConfig(tokens_per_window=int(tokens), window_seconds=float(window),
                             on_store_unavailable=on_unavailable)


def _allowed_tools(raw: Any) -> frozenset[str]:
    sec = _section(raw, "tools", {"allowed"})
    names = _list(sec.get("allowed", []), "tools.allowed")
    return frozenset(_string(name, f"tools.allowed[{i}]") for i, name in enumerate(names))


def _fallback(raw: Any) -> FallbackConfig:
    sec = _section(raw, "fallback", {"minConfidence", "minScore", "mode"})
    return FallbackConfig(
        min_confidence=_number(sec.get("minConfidence", 0.5), "fallback.minConfidence", 0.0, 1.0),
        min_score=_number(sec.get("minScore", 0.0), "fallback.minScore", 0.0, 1.0),
        mode=_choice(sec.get("mode", "Refuse"), "fallback.mode", FALLBACK_MODES),
    )


def _detector(raw: Any) -> DetectorConfig:
    sec = _section(raw, "successDetector", {"kind", "pattern", "schema", "reference", "match"})
    kind = _choice(sec.get("kind", "Task"), "successDetector.kind", DETECTOR_KINDS)
    schema = sec.get("schema")
    if isinstance(schema, str):
        # The operator's API carries the schema as JSON text; a ConfigMap author may inline it.
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as err:
            raise GuardrailConfigError("successDetector.schema", f"not valid JSON: {err}") from err
    if schema is not None and not isinstance(schema, dict):
        raise GuardrailConfigError("successDetector.schema", "must be a JSON object")
    pattern, reference = sec.get("pattern"), sec.get("reference")
    config = DetectorConfig(
        kind=kind,
        pattern=None if pattern is None else _string(pattern, "successDetector.pattern"),
        schema=schema,
        reference=None if reference is None else _string(reference, "successDetector.reference"),
        match=_choice(sec.get("match", "exact"), "successDetector.match", REFERENCE_MATCHES),
    )
    _require_detector_fields(config)
    return config


def _require_detector_fields(config: DetectorConfig) -> None:
    needed = {"Regex": ("pattern", config.pattern), "JsonSchema": ("schema", config.schema),
              "Reference": ("reference", config.reference)}.get(config.kind)
    if needed is not None and needed[1] is None:
        raise GuardrailConfigError(f"successDetector.{needed[0]}",
                                   f"required when kind is {config.kind}")


def _section(raw: Any, path: str, known: set[str]) -> dict:
    if not isinstance(raw, dict):
        raise GuardrailConfigError(path or "(root)", "must be a JSON object")
    unknown = sorted(set(raw) - known)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise GuardrailConfigError(where, f"unknown key (known: {', '.join(sorted(known))})")
    return raw


def _list(raw: Any, path: str) -> list:
    if not isinstance(raw, list):
        raise GuardrailConfigError(path, f"must be a list, got {type(raw).__name__}")
    return raw


def _string(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        raise GuardrailConfigError(path, f"must be a string, got {type(raw).__name__}")
    return raw


def _choice(raw: Any, path: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise GuardrailConfigError(path, f"must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _number(raw: Any, path: str, minimum: float | None = None, maximum: float | None = None,
            integer: bool = False) -> float:
    # bool is an int subclass in Python; `true` is never a meaningful count or threshold.
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (integer and not isinstance(raw, int)):
        kind = "an integer" if integer else "a number"
        raise GuardrailConfigError(path, f"must be {kind}, got {raw!r}")
    if minimum is not None and raw < minimum:
        raise GuardrailConfigError(path, f"must be >= {minimum:g}, got {raw}")
    if maximum is not None and raw > maximum:
        raise GuardrailConfigError(path, f"must be <= {maximum:g}, got {raw}")
    return float(raw)
