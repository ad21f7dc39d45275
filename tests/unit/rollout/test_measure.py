"""One observation -> Pass, Fail, Inconclusive or Error: never a pass without data."""

from __future__ import annotations

import math

import pytest

from tests.unit.rollout.factories import ERR, obs, target
from tugboat.api.model_release import AnalysisCheck, Verdict
from tugboat.rollout.durations import seconds
from tugboat.rollout.measure import judge, measurement

T = target()
SCORE = AnalysisCheck(name="score", metric="SuccessScore", threshold=0.8, max_regression=0.05)


@pytest.mark.parametrize(("check", "kw", "verdict", "says"), [
    (ERR, {"value": 0.01}, Verdict.PASS, "0.01 <= 0.05"),
    (ERR, {"value": 0.05}, Verdict.PASS, "<="),
    (ERR, {"value": 0.2}, Verdict.FAIL, "0.2 > 0.05"),
    (ERR, {"value": None}, Verdict.INCONCLUSIVE, "no data"),
    (ERR, {"value": math.nan}, Verdict.INCONCLUSIVE, "nan"),
    (ERR, {"value": math.inf}, Verdict.INCONCLUSIVE, "inf"),
    (ERR, {"value": 0.01, "requests": 3}, Verdict.INCONCLUSIVE,
     "3 canary requests in 1m, fewer than minRequests 10"),
    (ERR, {"value": 0.01, "requests": None}, Verdict.INCONCLUSIVE, "unknown canary requests"),
    (ERR, {"value": 0.01, "unreachable": True}, Verdict.INCONCLUSIVE, "did not answer"),
    (ERR, {"error": "bad_data: parse error at char 5"}, Verdict.ERROR, "query failed: bad_data"),
    # Higher is better for the success score; relative to stable over the same window.
    (SCORE, {"value": 0.9, "stable_value": 0.92}, Verdict.PASS, "0.9 >= 0.8"),
    (SCORE, {"value": 0.7, "stable_value": 0.7}, Verdict.FAIL, "0.7 < 0.8"),
    (SCORE, {"value": 0.85, "stable_value": 0.95}, Verdict.FAIL,
     "+0.1 worse than stable (0.95), allowed 0.05"),
    (SCORE, {"value": 0.9, "stable_value": None}, Verdict.INCONCLUSIVE, "stable track has no data"),
])
def test_verdicts(check, kw, verdict, says):
    v, message = judge(check, obs(T, at=None, **kw))
    assert v == verdict
    assert says in message


def test_min_requests_zero_accepts_unknown_counts():
    check = ERR.model_copy(update={"min_requests": 0})
    assert judge(check, obs(T, at=None, requests=None))[0] == Verdict.PASS


def test_measurement_keeps_what_people_need(now):
    m = measurement(ERR, obs(T, now, value=0.2))
    assert (m.check, m.metric, m.threshold, m.direction, m.verdict) == (
        "error-rate", "ErrorRate", 0.05, "AtMost", Verdict.FAIL)
    assert m.query.startswith("sum(rate(") and m.time == now and m.value == 0.2


def test_measurement_never_stores_nan(now):
    assert measurement(ERR, obs(T, now, value=math.nan)).model_dump(mode="json")["value"] is None


@pytest.mark.parametrize(("text", "expected"), [("30s", 30), ("1m30s", 90), ("250ms", 0.25), ("1.5h", 5400)])
def test_durations(text, expected):
    assert seconds(text) == expected


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "soon"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        seconds(text)
