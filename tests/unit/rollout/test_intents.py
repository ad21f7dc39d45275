"""Intents come in as one annotation with a token; a value is acted on once."""

from __future__ import annotations

import pytest

from tugboat.rollout.intents import ANNOTATION, IntentVerb, intent_annotation, read_intent


def test_round_trip():
    ann = intent_annotation(IntentVerb.PROMOTE_FULL, "2026-11-23T12:00:01Z")
    assert ann == {ANNOTATION: "promote-full@2026-11-23T12:00:01Z"}
    intent = read_intent(ann)
    assert intent.verb == IntentVerb.PROMOTE_FULL and intent.raw == ann[ANNOTATION]


@pytest.mark.parametrize(("value", "verb"), [("pause", IntentVerb.PAUSE), ("resume@7", IntentVerb.RESUME),
                                             ("promote@a b", None), ("ship-it@1", None)])
def test_read(value, verb):
    assert read_intent({ANNOTATION: value}).verb == verb


def test_absent():
    assert read_intent(None) is None and read_intent({"other": "x"}) is None


def test_bad_token_refused():
    with pytest.raises(ValueError):
        intent_annotation(IntentVerb.ABORT, "no spaces please")
