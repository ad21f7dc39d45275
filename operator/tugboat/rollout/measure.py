"""One observation of one check -> Pass, Fail, Inconclusive or Error, with a reason. Pure.

No data, NaN, an empty vector, Prometheus not answering, or fewer canary requests than the
check's minimum are inconclusive: never a pass. A query Prometheus refuses is an Error (it counts
toward the check's errorLimit). The absolute threshold is judged first; a relative bound then
compares the canary with the stable track over the same window.
"""

from __future__ import annotations

import math

from ..api.model_release import AnalysisCheck, Direction, Measurement, Verdict
from .inputs import Observation


def _missing(x: float | None) -> bool:
    return x is None or math.isnan(x) or math.isinf(x)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def judge(check: AnalysisCheck, obs: Observation) -> tuple[Verdict, str]:
    if obs.error:
        return Verdict.ERROR, f"query failed: {obs.error}"
    if obs.unreachable:
        return Verdict.INCONCLUSIVE, "Prometheus did not answer" + (f": {obs.detail}" if obs.detail else "")
    if obs.value is None:
        return Verdict.INCONCLUSIVE, "no data (empty result)"
    if _missing(obs.value):
        return Verdict.INCONCLUSIVE, f"value is {obs.value}"
    if check.min_requests and (_missing(obs.requests) or obs.requests < check.min_requests):
        seen = "unknown" if obs.requests is None else _fmt(obs.requests)
        return Verdict.INCONCLUSIVE, (f"{seen} canary requests in {check.window}, fewer than "
                                      f"minRequests {check.min_requests}")
    at_most = check.pass_when == Direction.AT_MOST
    ok = obs.value <= check.threshold if at_most else obs.value >= check.threshold
    sign = ("<=" if ok else ">") if at_most else (">=" if ok else "<")
    verdict_text = f"{_fmt(obs.value)} {sign} {_fmt(check.threshold)}"
    if not ok:
        return Verdict.FAIL, verdict_text
    if check.max_regression is None:
        return Verdict.PASS, verdict_text
    if _missing(obs.stable_value):
        return Verdict.INCONCLUSIVE, f"{verdict_text}, but the stable track has no data to compare"
    worse = obs.value - obs.stable_value if at_most else obs.stable_value - obs.value
    relative = (f"{worse:+.4g} worse than stable ({_fmt(obs.stable_value)}), "
                f"allowed {_fmt(check.max_regression)}")
    if worse > check.max_regression:
        return Verdict.FAIL, relative
    return Verdict.PASS, f"{verdict_text}, {relative}"


def measurement(check: AnalysisCheck, obs: Observation) -> Measurement:
    verdict, message = judge(check, obs)
    return Measurement(check=check.name, metric=check.metric, query=obs.query, value=_json(obs.value),
                       stable_value=_json(obs.stable_value), requests=_json(obs.requests),
                       threshold=check.threshold, direction=check.pass_when, verdict=verdict,
                       message=message, time=obs.at)


def _json(x: float | None) -> float | None:
    # JSON (and so the status) has no NaN or infinity; the message keeps what was seen.
    return None if _missing(x) else x
