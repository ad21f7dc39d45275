"""Label selectors: which lists an informer's selection may answer, and matching."""

import pytest

from tugboat.kube.selectors import matches, narrows, parse

RUN = "tugboat.dev/trainingrun"


def test_terms_of_equality_and_existence_selectors():
    assert parse(None) == frozenset()
    assert parse(f"{RUN}=a, tugboat.dev/attempt==2") == {(RUN, "=", "a"), ("tugboat.dev/attempt", "=", "2")}
    assert parse(f"{RUN},!gone,x!=y") == {(RUN, "exists", None), ("gone", "!exists", None), ("x", "!=", "y")}


@pytest.mark.parametrize("selector", ["env in (a,b)", "x notin (a)", "!x=y", "a=b=c"])
def test_what_is_not_parsed_goes_to_the_api_server(selector):
    assert parse(selector) is None
    assert not narrows(parse(selector), frozenset())


def test_matching():
    terms = parse(f"{RUN},x!=y,!gone")
    assert matches({RUN: "a", "x": "z"}, terms)
    assert not matches({RUN: "a", "x": "y"}, terms)
    assert not matches({"x": "z"}, terms)
    assert not matches({RUN: "a", "gone": ""}, terms)
    assert matches(None, frozenset())


def test_a_cache_answers_only_lists_at_least_as_narrow_as_its_selection():
    managed = parse("app.kubernetes.io/managed-by=tugboat")
    assert narrows(parse("app.kubernetes.io/managed-by=tugboat,tugboat.dev/release=r"), managed)
    assert not narrows(parse("tugboat.dev/release=r"), managed)  # would miss others' objects
    assert narrows(parse(f"{RUN}=a,tugboat.dev/attempt=1"), parse(RUN))  # k=v implies k
    assert narrows(parse("anything=1"), frozenset())  # a whole-kind cache answers every list
    assert not narrows(parse(RUN), parse(f"{RUN}=a"))
