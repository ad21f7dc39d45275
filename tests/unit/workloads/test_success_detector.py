"""Success detectors: Task, Regex, JsonSchema and Reference scorers."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tugboat_workloads.serve.guardrail_config import GuardrailConfigError, parse_guardrail_config
from tugboat_workloads.serve.success_detector import build_scorer, schema_problem


def scorer(detector, vocab=64):
    return build_scorer(parse_guardrail_config({"successDetector": detector}).success_detector, vocab)


@pytest.mark.parametrize("prompt, completion, score", [
    ("3 7 11", "15 19 23 27", 1.0),
    ("3 7 11", "15 19 0 27", 0.75),
    ("3 7 11", "16", 0.0),
    ("60 62", "0 2", 1.0),               # wraps around mod the vocabulary
    ("5 5", "5 5 5", 1.0),               # stride 0 is a progression
    ("3 7 12", "15 19", 0.0),            # not a progression -> 0
    ("3", "4", 0.0),                     # one token has no stride
    ("3 7 11", "", 0.0),                 # refused/empty completion
    ("3 7 11", "15 nineteen", 0.5),
    ("3 x", "15", 0.0),                  # unparseable prompt
    ("3 7 99", "1", 0.0),                # outside the vocabulary
])
def test_task_scorer(prompt, completion, score):
    assert scorer({"kind": "Task"})(prompt, completion) == pytest.approx(score)


@given(st.integers(2, 200), st.data())
def test_task_scorer_gives_one_to_any_true_continuation(vocab, data):
    start = data.draw(st.integers(0, vocab - 1))
    stride = data.draw(st.integers(0, vocab - 1))
    length = data.draw(st.integers(2, 10))
    n = data.draw(st.integers(1, 8))
    seq = [(start + stride * i) % vocab for i in range(length + n)]
    prompt, completion = " ".join(map(str, seq[:length])), " ".join(map(str, seq[length:]))
    assert scorer({"kind": "Task"}, vocab)(prompt, completion) == 1.0
    wrong = " ".join(str((t + 1) % vocab) for t in seq[length:])
    assert scorer({"kind": "Task"}, vocab)(prompt, wrong) == 0.0


@pytest.mark.parametrize("pattern, completion, score", [
    (r"^\d+( \d+)*$", "15 19", 1.0), (r"^\d+( \d+)*$", "15 x", 0.0), ("19", "15 19 23", 1.0),
    ("(?i)sorry", "SORRY", 1.0), ("^$", "", 1.0),
])
def test_regex_scorer_searches_the_completion(pattern, completion, score):
    assert scorer({"kind": "Regex", "pattern": pattern})("p", completion) == score


SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


@pytest.mark.parametrize("completion, score", [
    ('{"answer": 4}', 1.0), ('{"answer": "4"}', 0.0), ("{}", 0.0), ("not json", 0.0), ("4", 0.0),
])
def test_json_schema_scorer(completion, score):
    assert scorer({"kind": "JsonSchema", "schema": SCHEMA})("p", completion) == score


@pytest.mark.parametrize("match, completion, score", [
    ("exact", "15 19 23", 1.0), ("exact", " 15  19 23 ", 1.0), ("exact", "15 19", 0.0),
    ("partial", "15 19 23", 1.0), ("partial", "15 19", 2 / 3), ("partial", "15 0 23 27", 0.5),
    ("partial", "", 0.0),
])
def test_reference_scorer(match, completion, score):
    detector = {"kind": "Reference", "reference": "15 19 23", "match": match}
    assert scorer(detector)("p", completion) == pytest.approx(score)


@given(st.lists(st.sampled_from("abc"), max_size=6), st.lists(st.sampled_from("abc"), max_size=6))
def test_partial_reference_is_a_fraction_and_one_only_for_equal_texts(ref, got):
    value = scorer({"kind": "Reference", "reference": " ".join(ref) or " ", "match": "partial"})(
        "p", " ".join(got))
    assert 0.0 <= value <= 1.0
    assert (value == 1.0) == (ref == got)


def test_invalid_detector_settings_name_the_field():
    with pytest.raises(GuardrailConfigError, match="successDetector.schema"):
        scorer({"kind": "JsonSchema", "schema": {"type": "no-such-type"}})


@pytest.mark.parametrize("schema, problem", [
    ({"type": "strng"}, "keyword type: 'strng' is not valid"),
    ({"properties": {"n": {"minLength": -1}}}, "keyword properties/n/minLength: -1 is less than"),
    ({"required": "n"}, "keyword required: 'n' is not of type 'array'"),
])
def test_schema_problem_names_the_bad_keyword(schema, problem):
    assert schema_problem(schema).startswith(problem)
    with pytest.raises(GuardrailConfigError, match=problem.split(":")[0]):
        scorer({"kind": "JsonSchema", "schema": schema})


def test_a_valid_schema_has_no_problem():
    assert schema_problem({"type": "object", "required": ["answer"]}) is None
