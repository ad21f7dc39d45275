"""The rollout state machine, pass by pass: walks, waves, breaches, holds, intents, requeues."""

from __future__ import annotations

from tests.unit.rollout.driver import drive, good, measure
from tests.unit.rollout.factories import ERR, later, obs, spec, target
from tugboat.api.model_release import AnalysisCheck, RolloutStatus
from tugboat.rollout.decide import decide
from tugboat.rollout.inputs import Served
from tugboat.rollout.intents import Intent, IntentVerb

A, B = target("agent-a", "team-a", wave=0), target("agent-b", "team-b", wave=1, cap=20)
SPEC = spec()  # 10% with a 30 s pause, then 50%; error rate every 10 s, 2 passes per step


def states(d):
    return {p.name: (p.state, p.step, p.weight) for p in d.status.targets}


def conds(d):
    return {t: (str(s), str(r)) for t, s, r, _ in d.conditions}


def intent(verb: str, token: str = "1") -> Intent:
    return Intent(raw=f"{verb}@{token}", verb=IntentVerb(verb))


def test_good_release_walks_every_step_wave_by_wave(now):
    decisions, _ = drive(SPEC, [A, B], None, now)
    last = decisions[-1]
    assert last.status.phase == "Promoted" and last.verdict.reason == "RolloutPromoted"
    assert states(last) == {"agent-a": ("Promoted", 2, 100), "agent-b": ("Promoted", 2, 100)}
    seen = {"agent-a": [], "agent-b": []}
    for d in decisions:
        for p in d.status.targets:
            if not seen[p.name] or seen[p.name][-1] != p.weight:
                seen[p.name].append(p.weight)
    assert seen == {"agent-a": [10, 50, 100], "agent-b": [0, 10, 20, 100]}  # capped at 20 by its tenant
    b_started = next(i for i, d in enumerate(decisions) if states(d)["agent-b"][0] != "Pending")
    assert states(decisions[b_started])["agent-a"][0] == "Promoted"
    assert decisions[b_started - 1].status.targets[1].message == "waiting for wave 0 to be promoted"
    assert conds(last)["Progressing"] == ("False", "RolloutPromoted")
    assert conds(last)["CanaryHealthy"] == ("True", "AnalysisPassing")
    assert last.status.progress == "2/2" and last.status.last_verdict.startswith("Pass: error-rate")


def test_timed_pause_and_analysis_both_end_a_step(now):
    first = decide(SPEC, [A], None, now)
    assert first.requeue_after == 1.0  # measure at once
    d = first
    for s in (1, 11, 21):  # three passes of analysis: step 0 still pauses for 30 s
        d = decide(SPEC, [A], d.status, later(now, s), measure(SPEC, [A], d.status, later(now, s), good))
        assert states(d)["agent-a"] == ("Progressing", 0, 10)
    assert d.status.targets[0].checks[0].passes == 3
    assert "pause 30s: 9s left" in d.status.targets[0].message
    assert d.requeue_after == 9.0
    d = decide(SPEC, [A], d.status, later(now, 30))
    assert states(d)["agent-a"] == ("Progressing", 1, 50)
    assert d.status.targets[0].checks[0].passes == 0  # passes count per step


def test_first_release_of_a_line_goes_to_100_at_once(now):
    d = decide(SPEC, [target("a", stable=None), target("b", "team-b", wave=1, stable=None)], None, now)
    assert d.status.phase == "Promoted" and d.verdict.reason == "FirstRelease"
    assert {p.weight for p in d.status.targets} == {100}
    assert conds(d)["Progressing"] == ("False", "FirstRelease") and d.requeue_after is None


def test_a_target_with_nothing_stable_serves_at_once_while_others_canary(now):
    fresh = target("fresh", "team-c", wave=1, stable=None)
    d = decide(SPEC, [A, fresh], None, now)
    assert states(d) == {"agent-a": ("Progressing", 0, 10), "fresh": ("Promoted", 2, 100)}
    assert d.status.phase == "Progressing"


def _until_b_canaries(now):
    decisions, t = drive(SPEC, [A, B], None, now, stop=lambda d: states(d)["agent-b"][1] == 1)
    return decisions[-1], t


def test_breach_in_a_later_wave_rolls_back_everywhere_at_once(now):
    d, t = _until_b_canaries(now)
    assert states(d)["agent-a"] == ("Promoted", 2, 100)
    t = later(t, 10)
    served = [Served("team-a", "agent-a", 900, 2700), Served("team-b", "agent-b", 40, 120)]
    bad = decide(SPEC, [A, B], d.status, t, [obs(B, t, value=0.5)], served=served, release="v2")
    assert bad.status.phase == "RolledBack" and {p.weight for p in bad.status.targets} == {0}
    breach = bad.status.breach
    assert (breach.reason, breach.metric, breach.value, breach.threshold, breach.target) == (
        "AnalysisFailed", "ErrorRate", 0.5, 0.05, "agent-b")
    assert "tugboat_requests_total" in breach.query and "0.5 > 0.05" in breach.message
    assert conds(bad)["RolledBack"] == ("True", "AnalysisFailed")
    assert conds(bad)["CanaryHealthy"] == ("False", "AnalysisFailed")
    warned = {(e.name, e.event.type) for e in bad.target_events}
    assert warned == {("agent-a", "Warning"), ("agent-b", "Warning")}
    assert any(e.type == "Warning" and "agent-b" in e.message for e in bad.events)
    assert bad.requeue_after is None
    assert (bad.status.wave, bad.status.step, bad.status.weight) == (1, 1, 0)  # where it broke
    # Finished: later passes change nothing, whatever they are shown.
    again = decide(SPEC, [A, B], bad.status, later(t, 60), [obs(B, later(t, 60))])
    assert again.status == bad.status and again.events == ()


def test_breach_exposure_is_what_the_canary_served_while_failing(now):
    spec2 = spec({"weight": 50}, checks=(ERR.model_copy(update={"failure_limit": 1}),))
    d = decide(spec2, [A], None, now, served=[Served("team-a", "agent-a", 0, 0)])
    t1, t2 = later(now, 10), later(now, 20)
    d = decide(spec2, [A], d.status, t1, [obs(A, t1, value=0.3)], served=[Served(*A.key, 100, 300)])
    assert d.status.phase == "Progressing"  # one failure is within failureLimit 1
    d = decide(spec2, [A], d.status, t2, [obs(A, t2, value=0.3)], served=[Served(*A.key, 160, 480)])
    assert d.status.phase == "RolledBack"
    assert d.status.breach_exposure.requests == 60 and d.status.targets[0].breach_exposure.tokens == 180
    assert d.status.exposure.requests == 160


def test_breach_exposure_keeps_counting_the_scrapes_that_come_in_after_the_rollback(now):
    # Seen in e2e: a canary rolled back on its first failing window showed a breach exposure of 0
    # while the traffic generator counted answers; Prometheus had not scraped them yet.
    spec2 = spec({"weight": 50}, checks=(ERR.model_copy(update={"failure_limit": 0}),))
    d = decide(spec2, [A], None, now, served=[Served(*A.key, 0, 0)])
    t1 = later(now, 10)
    d = decide(spec2, [A], d.status, t1, [obs(A, t1, value=0.3)], served=[Served(*A.key, 0, 0)])
    assert d.status.phase == "RolledBack" and d.status.breach_exposure.requests == 0
    late = decide(spec2, [A], d.status, later(t1, 5), served=[Served(*A.key, 8, 24)])
    assert late.status.phase == "RolledBack" and late.status.breach_exposure.requests == 8
    assert late.status.targets[0].breach_exposure.tokens == 24 and late.status.exposure.requests == 8
    assert late.requeue_after == 5.0 and late.events == ()
    settled = decide(spec2, [A], late.status, later(t1, 31), served=[Served(*A.key, 99, 99)])
    assert settled.status == late.status and settled.requeue_after is None


def test_failed_queries_past_the_error_limit_roll_back(now):
    d = decide(SPEC, [A], None, now)
    for i in range(1, 6):  # errorLimit 4: the fifth failed query in a row rolls back
        t = later(now, 10 * i)
        d = decide(SPEC, [A], d.status, t, [obs(A, t, value=None, error="bad_data: unexpected '}'")])
        assert d.status.phase == ("RolledBack" if i == 5 else "Progressing"), i
    assert d.status.breach.reason == "AnalysisError"
    assert "5 failed queries in a row" in d.status.breach.message and "bad_data" in d.status.breach.message


def test_prometheus_down_holds_never_promotes_and_goes_on_when_back(now):
    down = lambda *_: {"value": None, "unreachable": True}  # noqa: E731
    decisions, t = drive(SPEC, [A], None, now, how=down, passes=40)
    assert decisions[-1].status.phase == "Inconclusive"
    assert all(d.status.phase != "Promoted" for d in decisions)
    assert {states(d)["agent-a"][2] for d in decisions} == {10}
    held = decisions[-1]
    assert conds(held)["CanaryHealthy"][0] == "Unknown" and conds(held)["Progressing"] == (
        "True", "AnalysisInconclusive")
    assert "did not answer" in held.verdict.message and "never promotes" in held.verdict.message
    back, _ = drive(SPEC, [A], held.status, t)
    assert back[-1].status.phase == "Promoted"


def test_a_quiet_canary_never_promotes(now):
    quiet = lambda *_: {"value": 0.0, "requests": 3}  # noqa: E731
    decisions, _ = drive(SPEC, [A], None, now, how=quiet, passes=30)
    assert all(p.state != "Promoted" for d in decisions for p in d.status.targets)


def test_an_observation_counts_once_per_interval(now):
    d = decide(SPEC, [A], None, now)
    t = later(now, 1)
    d = decide(SPEC, [A], d.status, t, [obs(A, t), obs(A, later(t, 5))])  # second one too soon
    assert d.status.targets[0].checks[0].passes == 1
    d = decide(SPEC, [A], d.status, later(t, 5), [obs(A, t), obs(A, later(t, 5))])  # replayed
    assert d.status.targets[0].checks[0].passes == 1


def test_same_status_in_same_decision_out(now):
    d, t = _until_b_canaries(now)
    observations = measure(SPEC, [A, B], d.status, later(t, 10), good)
    first = decide(SPEC, [A, B], d.status, later(t, 10), observations)
    replay = decide(SPEC, [A, B], first.status, later(t, 10), observations)
    assert replay.status == first.status and replay.events == ()


def test_pause_without_duration_waits_for_promote_once_per_token(now):
    manual = spec({"weight": 10, "pause": {}}, {"weight": 50, "pause": {}})
    decisions, t = drive(manual, [A], None, now, passes=10)
    d = decisions[-1]
    assert d.status.phase == "Paused" and d.verdict.reason == "WaitingForPromote"
    assert states(d)["agent-a"] == ("Paused", 0, 10)
    d = decide(manual, [A], d.status, later(t, 1), intent=intent("promote", "1"))
    assert states(d)["agent-a"] == ("Progressing", 1, 50) and d.status.handled_intent == "promote@1"
    decisions, t = drive(manual, [A], d.status, later(t, 2), passes=10)
    d = decide(manual, [A], decisions[-1].status, later(t, 1), intent=intent("promote", "1"))
    assert states(d)["agent-a"] == ("Paused", 1, 50)  # the same annotation is not applied twice
    d = decide(manual, [A], d.status, later(t, 2), intent=intent("promote", "2"))
    assert states(d)["agent-a"] == ("Promoted", 2, 100)


def test_promote_ends_the_pause_but_not_the_analysis(now):
    manual = spec({"weight": 10, "pause": {}}, {"weight": 50})
    d = decide(manual, [A], None, now)
    d = decide(manual, [A], d.status, later(now, 1), intent=intent("promote"))
    assert states(d)["agent-a"] == ("Progressing", 0, 10)
    assert "error-rate 0/2" in d.status.targets[0].message


def test_manual_pause_stops_steps_and_waves_but_not_rollback(now):
    d = decide(SPEC, [A, B], None, now, intent=intent("pause"))
    assert d.status.phase == "Paused" and d.verdict.reason == "PausedByUser"
    assert states(d)["agent-a"] == ("Pending", 0, 0)
    d = decide(SPEC, [A, B], d.status, later(now, 1), intent=intent("resume", "2"))
    assert states(d)["agent-a"] == ("Progressing", 0, 10)
    d = decide(SPEC, [A, B], d.status, later(now, 2), intent=intent("pause", "3"))
    decisions, t = drive(SPEC, [A, B], d.status, later(now, 3), passes=12)
    assert {states(x)["agent-a"][:2] for x in decisions} == {("Progressing", 0)}
    bad = decide(SPEC, [A, B], decisions[-1].status, later(t, 10), [obs(A, later(t, 10), value=0.9)])
    assert bad.status.phase == "RolledBack"


def test_abort_then_retry_starts_again(now):
    d, t = _until_b_canaries(now)
    aborted = decide(SPEC, [A, B], d.status, later(t, 1), intent=intent("abort"))
    assert aborted.status.phase == "RolledBack" and aborted.verdict.reason == "Aborted"
    assert {p.weight for p in aborted.status.targets} == {0}
    again = decide(SPEC, [A, B], aborted.status, later(t, 2), intent=intent("retry", "2"))
    assert states(again) == {"agent-a": ("Progressing", 0, 10), "agent-b": ("Pending", 0, 0)}
    assert again.status.breach is None and again.status.handled_intent == "retry@2"


def test_retry_is_ignored_unless_rolled_back(now):
    d = decide(SPEC, [A], None, now, intent=intent("retry"))
    assert d.status.phase == "Progressing"
    assert [e.reason for e in d.events] == ["IntentIgnored", "StepStarted"]


def test_promote_full_skips_everything(now):
    d = decide(SPEC, [A, B], None, now)
    d = decide(SPEC, [A, B], d.status, later(now, 1), intent=intent("promote-full"))
    assert d.status.phase == "Promoted" and {p.weight for p in d.status.targets} == {100}


def test_an_unknown_intent_is_reported_once(now):
    bad = Intent(raw="ship-it@1", verb=None)
    d = decide(SPEC, [A], None, now, intent=bad)
    assert [e.reason for e in d.events if e.type == "Warning"] == ["IntentInvalid"]
    assert decide(SPEC, [A], d.status, now, intent=bad).events == ()


def test_no_targets_nothing_rolls_out(now):
    d = decide(SPEC, [], None, now)
    assert d.status.phase is None and d.verdict.reason == "NoTargets" and d.requeue_after is None
    assert conds(d)["Progressing"] == ("False", "NoTargets")


def test_a_lowered_tenant_cap_takes_effect_at_once(now):
    d = decide(SPEC, [A], None, now)
    d = decide(SPEC, [A.__class__(**{**A.__dict__, "max_weight": 5})], d.status, later(now, 1))
    assert states(d)["agent-a"] == ("Progressing", 0, 5)


def test_targets_that_went_away_leave_the_plan(now):
    d = decide(SPEC, [A, B], None, now)
    d = decide(SPEC, [A], d.status, later(now, 1))
    assert [p.name for p in d.status.targets] == ["agent-a"]


def test_relative_check_compares_with_stable(now):
    rel = AnalysisCheck(name="score", metric="SuccessScore", threshold=0.5, max_regression=0.05,
                        interval="10s", count=1, min_requests=0)
    s = spec({"weight": 50}, checks=(rel,))
    d = decide(s, [A], None, now)
    t = later(now, 1)
    d = decide(s, [A], d.status, t, [obs(A, t, value=0.8, check="score", stable_value=0.95)])
    assert d.status.phase == "RolledBack" and "worse than stable" in d.status.breach.message


def test_due_checks_follow_the_interval(now):
    from tugboat.rollout.schedule import due_checks

    d = decide(SPEC, [A, B], None, now)
    assert [(x.name, x.check.name) for x in due_checks(SPEC, d.status, now)] == [("agent-a", "error-rate")]
    t = later(now, 1)
    d = decide(SPEC, [A, B], d.status, t, [obs(A, t)])
    assert due_checks(SPEC, d.status, later(t, 9)) == ()
    assert len(due_checks(SPEC, d.status, later(t, 10))) == 1
    assert d.requeue_after == 10.0
    assert due_checks(SPEC, RolloutStatus(), now) == ()
