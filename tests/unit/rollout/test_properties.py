"""Properties of the rollout state machine over random specs, targets, measurements and intents.

Each example runs a rollout pass after pass as the controllers would (measure what is due,
decide, write the status as JSON and read it back, wait) and checks every pass against what
must always hold: weights within the step and the tenant cap and never jumping, a breach ends at
weight 0 everywhere, waves in order, promotion only after every step's analysis passed, no data
never promotes, and the same status in gives the same decision out.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.rollout.factories import obs as make_obs
from tests.unit.rollout.factories import target
from tugboat.api.model_release import AnalysisCheck, RolloutSpec, RolloutStatus, Verdict
from tugboat.rollout.analysis import measuring
from tugboat.rollout.decide import decide
from tugboat.rollout.intents import Intent, IntentVerb
from tugboat.rollout.measure import judge
from tugboat.rollout.schedule import ACTIVE, due_checks

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GOOD = {"error-rate": 0.01, "success-score": 0.95}
BAD = {"error-rate": 0.5, "success-score": 0.3}
OUTCOMES = ("pass", "fail", "nodata", "nan", "few", "error", "unreachable")
NO_DATA = ("nodata", "nan", "few", "error", "unreachable")


def _outcome(kind: str, check: str) -> dict:
    return {"pass": {"value": GOOD[check]}, "fail": {"value": BAD[check]}, "nodata": {"value": None},
            "nan": {"value": float("nan")}, "few": {"value": GOOD[check], "requests": 2},
            "error": {"value": None, "error": "bad_data"}, "unreachable": {"unreachable": True}}[kind]


@st.composite
def rollout_specs(draw) -> RolloutSpec:
    timed = st.sampled_from(["5s", "20s", "1m"]).map(lambda d: {"duration": d})
    pause = st.one_of(st.none(), st.just({}), timed)
    steps = draw(st.lists(st.fixed_dictionaries({"weight": st.integers(0, 100), "pause": pause,
                                                 "analysis": st.booleans()}), min_size=1, max_size=4))
    names = draw(st.lists(st.sampled_from(list(GOOD)), min_size=1, max_size=2, unique=True))
    checks = [AnalysisCheck(name=n, metric="ErrorRate" if n == "error-rate" else "SuccessScore",
                            threshold=0.05 if n == "error-rate" else 0.8,
                            interval=draw(st.sampled_from(["5s", "10s", "15s"])),
                            count=draw(st.integers(1, 2)),
                            failure_limit=draw(st.integers(0, 1)), inconclusive_limit=draw(st.integers(0, 2)),
                            error_limit=draw(st.integers(0, 2)), min_requests=10).wire() for n in names]
    for s in steps:
        if s["pause"] is None:
            del s["pause"]
    return RolloutSpec.model_validate({"steps": steps, "analysis": {"checks": checks}})


@st.composite
def fleets(draw):
    n = draw(st.integers(1, 4))
    return [target(f"agent-{i}", f"team-{i}", wave=draw(st.integers(0, 2)), cap=draw(st.integers(0, 100)),
                   stable=draw(st.sampled_from(["v1", "v1", "v1", None]))) for i in range(n)]


def passes(outcomes, with_intents: bool):
    verbs = st.sampled_from(list(IntentVerb)) if with_intents else st.nothing()
    return st.lists(st.tuples(st.one_of(st.just(None), st.integers(0, 30)),  # None: wait the requeue
                              st.lists(st.sampled_from(outcomes), min_size=1, max_size=4),
                              st.one_of(st.none(), verbs) if with_intents else st.none()),
                    min_size=1, max_size=30)


def run(spec: RolloutSpec, fleet, script, on_pass) -> list:
    """Drive the rollout through `script`; `on_pass(old, new, fed, intent)` checks each pass."""
    status, now, decisions = None, START, []
    for i, (wait, kinds, verb) in enumerate(script):
        by_key = {t.key: t for t in fleet}
        due = due_checks(spec, status, now)
        fed = [make_obs(by_key[(d.namespace, d.name)], now, check=d.check.name,
                        **_outcome(kinds[j % len(kinds)], d.check.name)) for j, d in enumerate(due)]
        intent = Intent(raw=f"{verb}@{i}", verb=verb) if verb else None
        d = decide(spec, fleet, status, now, fed, intent, release="v2")
        replay = decide(spec, fleet, d.status, now, fed, intent, release="v2")
        assert replay.status.wire() == d.status.wire() and replay.events == (), "same status in, same out"
        on_pass(status or RolloutStatus(), d, fed, verb)
        decisions.append(d)
        # What the API server stores and a restarted operator reads back.
        status = RolloutStatus.model_validate(d.status.wire())
        step = d.requeue_after if wait is None else wait
        now = now + timedelta(seconds=step if step is not None else 30)
    return decisions


def _plans(status: RolloutStatus) -> dict:
    return {(p.namespace, p.name): p for p in status.targets}


def check_invariants(spec: RolloutSpec, fleet):
    caps = {t.key: t.max_weight for t in fleet}
    checks = {c.name: c for c in spec.analysis.checks}

    def on_pass(old: RolloutStatus, new, fed, verb):
        before, after = _plans(old), _plans(new.status)
        for key, p in after.items():
            capped = {i: min(s.weight, caps[key]) for i, s in enumerate(spec.steps)}
            if p.state in ACTIVE:
                assert p.weight <= capped[p.step], "weight within the step's weight and the tenant's cap"
            if p.state == "Pending":
                assert p.weight == 0
            o = before.get(key)
            allowed = {0 if o is None else o.weight, 0 if o is None else min(o.weight, caps[key])}
            allowed |= {capped[0]} if o is None or o.state in ("Pending", "RolledBack") else set()
            allowed |= {capped[o.step + 1]} if o is not None and o.step + 1 in capped else set()
            allowed |= {0} if p.state == "RolledBack" else set()
            allowed |= {100} if p.state == "Promoted" else set()
            assert p.weight in allowed, f"weight jumped: {o and o.weight} -> {p.weight}"
        if new.status.phase == "RolledBack":
            assert {p.weight for p in new.status.targets} <= {0}, "rolled back: weight 0 everywhere"
        failures = Counter()
        for o in fed:
            if judge(checks[o.check], o)[0] in (Verdict.FAIL, Verdict.ERROR):
                failures[(o.key, o.check)] += 1
        for (key, name), _ in failures.items():
            p, c = before.get(key), checks[name]
            progress = next((x for x in p.checks if x.name == name), None) if p else None
            f = progress.failures if progress else 0
            e = progress.errors if progress else 0
            kinds = [judge(c, o)[0] for o in fed if o.key == key and o.check == name]
            if (Verdict.FAIL in kinds and f + 1 > c.failure_limit) or (
                    Verdict.ERROR in kinds and e + 1 > c.error_limit):
                assert new.status.phase == "RolledBack", "a breach always rolls back"
        if verb != IntentVerb.PROMOTE_FULL:
            for key, p in after.items():
                was = before.get(key)
                started = p.state in ACTIVE and (was is None or was.state in ("Pending", "RolledBack"))
                if started and p.step == 0 and p.stable_release is not None:
                    lower = [q for q in after.values() if q.wave < p.wave]
                    assert all(q.state == "Promoted" for q in lower), "a wave starts after the ones before"
    return on_pass


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rollout_specs(), fleets(), passes(OUTCOMES, with_intents=True))
def test_invariants_hold_on_every_pass(spec, fleet, script):
    run(spec, fleet, script, check_invariants(spec, fleet))


@SETTINGS
@given(rollout_specs(), fleets(), passes(NO_DATA, with_intents=False))
def test_no_data_never_promotes(spec, fleet, script):
    first_analysis = next((i for i, s in enumerate(spec.steps) if s.analysis), None)
    for d in run(spec, fleet, script, check_invariants(spec, fleet)):
        for p in d.status.targets:
            if p.stable_release is not None and first_analysis is not None:
                assert p.state != "Promoted" and p.step <= first_analysis


@SETTINGS
@given(rollout_specs(), fleets(), passes(OUTCOMES, with_intents=False))
def test_promotion_only_after_every_step_analysis_passed(spec, fleet, script):
    checks = {c.name: c for c in spec.analysis.checks}
    passed: Counter = Counter()  # (target, step, check) -> passing measurements fed at that step

    def on_pass(old, new, fed, verb):
        check_invariants(spec, fleet)(old, new, fed, verb)
        before = _plans(old)
        for o in fed:
            p = before.get(o.key)
            if p is not None and measuring(p) and judge(checks[o.check], o)[0] == Verdict.PASS:
                passed[(o.key, p.step, o.check)] += 1
        for key, p in _plans(new.status).items():
            o = before.get(key)
            if o is None or o.state not in ACTIVE or p.step <= o.step or o.step >= len(spec.steps):
                continue
            if spec.steps[o.step].analysis:
                for c in checks.values():
                    assert passed[(key, o.step, c.name)] >= c.count, f"step {o.step} ended without passes"

    run(spec, fleet, script, on_pass)
