"""Success detectors: score one completion in [0, 1] (1 = the request was answered correctly).

Pluggable scorers chosen by `successDetector.kind`: Task (the arithmetic-progression task),
Regex (1 if the pattern is found), JsonSchema (1 if the completion is JSON valid against the
schema) and Reference (exact or position-wise partial match with a reference text). Pure and
torch-free; building a scorer validates its settings and raises `GuardrailConfigError` naming
the field. `schema_problem` is the one schema check, shared with the operator so that a schema
the runtime would refuse is refused at apply time. Must not see metrics, HTTP or the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol

import jsonschema

from tugboat_workloads.task import encode_prompt, expected_continuation

from .guardrail_config import DetectorConfig, GuardrailConfigError


class Scorer(Protocol):
    def __call__(self, prompt: str, completion: str) -> float: ...


@dataclass(frozen=True)
class TaskScorer:
    """Fraction of completion tokens that continue the prompt's progression mod `vocab_size`."""

    vocab_size: int

    def __call__(self, prompt: str, completion: str) -> float:
        produced = completion.split()
        if not produced:
            return 0.0
        try:
            prompt_tokens = encode_prompt(prompt, self.vocab_size)
        except ValueError:
            return 0.0
        expected = expected_continuation(prompt_tokens, len(produced), self.vocab_size)
        if expected is None:
            return 0.0
        hits = sum(1 for got, want in zip(produced, expected, strict=False) if got == str(want))
        return hits / len(produced)


@dataclass(frozen=True)
class RegexScorer:
    pattern: re.Pattern[str]

    def __call__(self, prompt: str, completion: str) -> float:
        return 1.0 if self.pattern.search(completion) else 0.0


@dataclass(frozen=True)
class JsonSchemaScorer:
    validator: jsonschema.protocols.Validator

    def __call__(self, prompt: str, completion: str) -> float:
        try:
            document = json.loads(completion)
        except json.JSONDecodeError:
            return 0.0
        return 1.0 if self.validator.is_valid(document) else 0.0


@dataclass(frozen=True)
class ReferenceScorer:
    """exact: whitespace-normalised equality; partial: tokens equal at the same position over
    the longer of the two token lists (so extra tokens cost as much as missing ones)."""

    reference: str
    match: str = "exact"

    def __call__(self, prompt: str, completion: str) -> float:
        want, got = self.reference.split(), completion.split()
        if self.match == "exact":
            return 1.0 if want == got else 0.0
        longest = max(len(want), len(got))
        if longest == 0:
            return 1.0
        return sum(1 for a, b in zip(want, got, strict=False) if a == b) / longest


def schema_problem(schema: dict) -> str | None:
    """Why `schema` is not a JSON Schema its own dialect (`$schema`, else the latest) accepts,
    naming the offending keyword by its path; None when it is one."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as err:
        where = "/".join(str(part) for part in err.path) or "(root)"
        return f"keyword {where}: {err.message}"
    return None


def build_scorer(config: DetectorConfig, vocab_size: int) -> Scorer:
    """Turn a parsed `successDetector` section into a scorer, validating its pattern/schema."""
    if config.kind == "Task":
        return TaskScorer(vocab_size)
    if config.kind == "Regex":
        try:
            return RegexScorer(re.compile(config.pattern or ""))
        except re.error as err:
            raise GuardrailConfigError("successDetector.pattern",
                                       f"invalid regular expression: {err}") from err
    if config.kind == "JsonSchema":
        problem = schema_problem(config.schema)
        if problem is not None:
            raise GuardrailConfigError("successDetector.schema", f"invalid JSON Schema: {problem}")
        return JsonSchemaScorer(jsonschema.validators.validator_for(config.schema)(config.schema))
    if config.kind == "Reference":
        return ReferenceScorer(config.reference or "", config.match)
    raise GuardrailConfigError("successDetector.kind", f"unknown kind {config.kind!r}")
