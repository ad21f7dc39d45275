"""The case generator itself: what it derives from a schema, so the contract tests cannot pass by
generating nothing."""

from __future__ import annotations

import math

from .schema_cases import materialize, rule_messages, walk

SCHEMA = {"type": "object", "properties": {
    "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
    "inner": {"type": "object", "default": {"n": 2}, "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 9, "default": 2},
        "rate": {"type": "number", "minimum": 0.0, "exclusiveMinimum": True, "maximum": 1.0},
        "free": {"type": "integer"},
    }, "x-kubernetes-validations": [{"rule": "self.n > 0", "message": "n must be positive"}]},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["x", "y"]}},
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "k": {"type": "string", "enum": ["p"]}}}},
}}


def test_defaults_are_filled_in_as_the_api_server_would():
    assert materialize(SCHEMA, {}) == {"mode": "A", "inner": {"n": 2}}


def test_every_enum_value_bound_and_corner_becomes_a_case():
    cases, unreached = walk(SCHEMA, materialize(SCHEMA, {}))
    assert [c.id for c in cases] == [
        "mode='A'", "mode='B'", "inner.n=1", "inner.n=9", f"inner.rate={math.nextafter(0.0, 1.0)!r}",
        "inner.rate=1.0", "inner:corner-minimum", "inner:corner-maximum", "tags=['x']", "tags=['y']"]
    corner = next(c for c in cases if c.why == "corner-maximum")
    assert corner.apply({"inner": {"n": 2}}) == {"inner": {"n": 9, "rate": 1.0}}
    # An absent (or empty) list of objects reaches no item: reported, not skipped.
    assert unreached == ["items"]
    assert walk(SCHEMA, materialize(SCHEMA, {"items": []}))[1] == ["items[0]"]


def test_list_items_are_varied_through_the_first_one():
    cases, unreached = walk(SCHEMA, materialize(SCHEMA, {"items": [{"k": "p"}]}))
    assert unreached == []
    (case,) = [c for c in cases if c.id == "items[0].k='p'"]
    assert case.apply({"items": [{"k": "q"}, {"k": "r"}]}) == {"items": [{"k": "p"}, {"k": "r"}]}


def test_rule_messages_are_collected_from_every_level():
    assert rule_messages(SCHEMA) == {"n must be positive"}
