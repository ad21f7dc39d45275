"""The rollout phase of a Ready ModelRelease: the state machine's answer merged into the release
(status.rollout, conditions, phase, events on the release and on each AgentDeployment, requeue),
the alias moved once on promotion and never on rollback; and what the controller sends to
Prometheus per check (pure parts of controllers/rollout_gather.py), and how the plugin shows it."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.rollout.factories import ERR, obs, spec, target
from tugboat.api.model_release import AnalysisCheck, ModelReleaseStatus
from tugboat.conditions import find
from tugboat.controllers.rollout_gather import Measurer, check_query, may_reach, observe_check, why_not
from tugboat.controllers.settings import Settings
from tugboat.plugin import render_rollout
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import Meta, set_conditions
from tugboat.rollout.decision import DueCheck
from tugboat.rollout.intents import read_intent
from tugboat.rollout.measure import judge
from tugboat.rollout.targets import Candidate

META = Meta(name="moe-v2", namespace="ml-platform", uid="feedfacecafebeef", generation=1)
CFG = mr.Config(image="img", pool_label="tugboat.dev/pool", artifact_root="/art", artifact_pvc=None,
                registry=True)
STEPS = spec({"weight": 20, "pause": {"duration": "2s"}}, {"weight": 60})


def ready_status(now) -> ModelReleaseStatus:
    s = ModelReleaseStatus(artifact_uri="file:///art/r", manifest_digest="d" * 64, registry_version="7")
    return set_conditions(s, now, 1, *((t, True, "Done", "done") for t in mr.STAGES))


def observed(now, status=None, **rollout):
    raw = {"modelLine": "moe", "source": {"trainingRun": "moe"}, "registry": {"alias": "production"},
           "rollout": STEPS.wire()}
    return mr.Observed(meta=META, spec=raw, status=status or ready_status(now), sigstore_available=False,
                       trusted_key=True, config=CFG,
                       rollout=mr.RolloutView(**rollout) if rollout is not None else None)


def cond(out, t):
    c = find(out.status.conditions, t)
    return (c.status, c.reason) if c else None


def test_not_gathered_stays_ready(now):
    out = mr.decide(mr.Observed(**{**observed(now).__dict__, "rollout": None}), now)
    assert out.status.phase == "Ready" and out.status.rollout is None and out.requeue_after is None


def test_no_targets_stays_ready_and_names_what_was_refused(now):
    out = mr.decide(observed(now, targets=(), refused=("team-c/agent refused: Tenant c does not allow "
                                                       "model line moe",)), now)
    assert out.status.phase == "Ready"
    assert cond(out, "Ready") == ("True", "ReleaseReady")
    progressing = find(out.status.conditions, "Progressing")
    assert progressing.status == "False" and progressing.reason == "NoTargets"
    assert "team-c/agent refused: Tenant c does not allow model line moe" in progressing.message
    assert [e.reason for e in out.events] == ["ReleaseReady"]  # what the release's Ready event always was


def test_a_selector_matching_nothing_is_invalid_naming_it_and_stays_ready(now):
    raw = observed(now).spec | {"rollout": STEPS.wire() | {"selector": {
        "matchLabels": {"tier": "gold"}, "matchExpressions": [{"key": "beta", "operator": "DoesNotExist"}]}}}
    seen = observed(now, targets=(), refused=("team-a/agent does not match spec.rollout.selector",))
    out = mr.decide(mr.Observed(**{**seen.__dict__, "spec": raw}), now)
    valid = find(out.status.conditions, "Valid")
    assert (valid.status, valid.reason) == ("False", "SelectorMatchesNothing")
    assert "tier=gold,!beta" in valid.message and "team-a/agent does not match" in valid.message
    assert out.status.phase == "Ready" and cond(out, "Ready") == ("True", "ReleaseReady")
    # Once a deployment matches, the same release is valid again and rolls out.
    again = mr.decide(mr.Observed(**{**observed(now, targets=(target("agent", "team-a"),)).__dict__,
                                     "spec": raw, "status": out.status}), now)
    assert cond(again, "Valid") == ("True", "SpecValid") and again.status.phase == "Progressing"


def test_no_selector_and_no_targets_is_still_valid(now):
    out = mr.decide(observed(now, targets=(), refused=()), now)
    assert cond(out, "Valid") == ("True", "SpecValid")


def test_first_pass_starts_wave_zero_with_events_on_each_target(now):
    a, b = target("agent", "team-a", wave=0), target("agent", "team-b", wave=1)
    out = mr.decide(observed(now, targets=(a, b)), now)
    assert out.status.phase == "Progressing"
    plans = {p.namespace: p for p in out.status.rollout.targets}
    assert plans["team-a"].weight == 20 and plans["team-b"].weight == 0
    assert [(e.api_version, e.kind, e.namespace, e.name) for e in out.object_events] == [
        ("tugboat.dev/v1alpha1", "AgentDeployment", "team-a", "agent")]
    assert out.object_events[0].event.message.startswith("moe-v2: wave 0 starts")
    assert any("New -> Progressing" in e.message for e in out.events)
    assert out.requeue_after is not None and out.requeue_after >= 1.0
    assert cond(out, "Ready") == ("True", "ReleaseReady")


def _walk(now, status, targets, seconds, **kw):
    at = now + timedelta(seconds=seconds)
    return mr.decide(observed(at, status=status, targets=targets, **kw), at)


def test_promoted_moves_the_alias_once(now):
    a = target("agent", "team-a")
    out = mr.decide(observed(now, targets=(a,)), now)
    t = 0.0
    for _ in range(20):
        if out.status.phase == "Promoted":
            break
        t += 10
        out = _walk(now, out.status, (a,), t, observations=(obs(a, now + timedelta(seconds=t)),))
    assert out.status.phase == "Promoted", out.status.message
    (action,) = out.actions
    assert action == mr.SetAlias("moe", "production", "7")
    assert cond(out, mr.ALIAS_MOVED) == ("False", "RolloutPromoted")
    moved = _walk(now, out.status, (a,), t + 5, alias_version="7")
    assert moved.actions == () and cond(moved, mr.ALIAS_MOVED) == ("True", "RolloutPromoted")
    # A later release took the alias: this one never takes it back.
    later = _walk(now, moved.status, (a,), t + 10, alias_version="8")
    assert later.actions == () and later.requeue_after is None


def test_breach_rolls_back_with_warnings_and_never_moves_the_alias(now):
    a, b = target("agent", "team-a"), target("agent", "team-b")
    out = mr.decide(observed(now, targets=(a, b)), now)
    out = _walk(now, out.status, (a, b), 10, observations=(obs(a, now + timedelta(seconds=10), value=0.5),))
    assert out.status.phase == "RolledBack"
    assert cond(out, "RolledBack") == ("True", "AnalysisFailed")
    assert all(p.weight == 0 for p in out.status.rollout.targets)
    warnings = [e for e in out.object_events if e.event.type == "Warning"]
    assert {(e.namespace, e.name) for e in warnings} == {("team-a", "agent"), ("team-b", "agent")}
    assert "error-rate" in warnings[0].event.message and "0.05" in warnings[0].event.message
    assert any(e.type == "Warning" and "Progressing -> RolledBack" in e.message for e in out.events)
    assert out.actions == ()
    again = _walk(now, out.status, (a, b), 20, alias_version="6")
    assert again.status.phase == "RolledBack" and again.actions == ()


def test_unreachable_prometheus_holds_with_the_reason(now):
    a = target("agent", "team-a")
    check = AnalysisCheck(name="error-rate", metric="ErrorRate", threshold=0.05, interval="2s",
                          inconclusive_limit=1)
    steps = spec({"weight": 20}, checks=(check,))
    raw_spec = {"modelLine": "moe", "source": {"trainingRun": "moe"}, "rollout": steps.wire()}
    status, t = None, 0
    for _ in range(4):
        at = now + timedelta(seconds=t)
        down = obs(a, at, value=None, requests=None, unreachable=True,
                   detail="no Prometheus URL configured (tugboat run --prometheus-url)")
        o = mr.Observed(meta=META, spec=raw_spec, status=status or ready_status(now),
                        sigstore_available=False,
                        trusted_key=True, config=CFG,
                        rollout=mr.RolloutView(targets=(a,), observations=(down,) if t else ()))
        out = mr.decide(o, at)
        status, t = out.status, t + 3
    assert out.status.phase == "Inconclusive"
    (plan,) = out.status.rollout.targets
    assert plan.weight == 20 and "no Prometheus URL configured" in plan.checks[0].last.message


def test_intent_annotation_reaches_the_state_machine(now):
    a = target("agent", "team-a")
    out = mr.decide(observed(now, targets=(a,)), now)
    paused = _walk(now, out.status, (a,), 1, intent=read_intent({"tugboat.dev/rollout-intent": "pause@t1"}))
    assert paused.status.phase == "Paused" and paused.status.rollout.handled_intent == "pause@t1"


def test_check_queries_substitute_and_escape():
    t = target("agent", "team-a")
    custom = AnalysisCheck(name="c", metric="Custom", direction="AtMost", threshold=1, window="30s",
                           query='sum(rate(x{release="$release",track="$track",tenant="$tenant",'
                                 'namespace="$namespace",agent="$agentDeployment"}[$window]))')
    assert check_query(custom, 'v"2', "canary", t) == (
        'sum(rate(x{release="v\\"2",track="canary",tenant="team-a",namespace="team-a",'
        'agent="agent"}[30s]))')
    builtin = check_query(ERR, "moe-v2", "stable", t)
    assert 'release="moe-v2"' in builtin and 'track="stable"' in builtin
    assert 'agent_deployment="agent"' in builtin and "[60s]" in builtin


def test_namespace_rule():
    s = Settings(release_namespaces=("ml-platform",))
    assert may_reach("team-a", "team-a", s) and may_reach("ml-platform", "team-b", s)
    assert not may_reach("team-a", "team-b", s)


def test_status_shows_every_measurement(now):
    a = target("agent", "team-a")
    out = mr.decide(observed(now, targets=(a,)), now)
    out = _walk(now, out.status, (a,), 10, observations=(obs(a, now + timedelta(seconds=10)),))
    text = render_rollout(out.status.rollout.model_dump(by_alias=True, mode="json"))
    assert "team-a/agent" in text and "v1" in text and "20%" in text
    assert "error-rate (ErrorRate): Pass value 0.01 threshold 0.05 (AtMost)" in text
    assert "query: sum(rate(tugboat_requests_total" in text


def test_no_prometheus_url_is_inconclusive_and_says_so(now):
    t = target("agent", "team-a")
    got = observe_check(Measurer(None), DueCheck(t.namespace, t.name, ERR, "v1"), "moe-v2", t, now)
    assert got.unreachable and got.error is None
    assert judge(ERR, got) == ("Inconclusive", "Prometheus did not answer: no Prometheus URL "
                                               "configured (tugboat run --prometheus-url)")


def test_pins_and_the_selector_are_named_when_nothing_rolls_out():
    assert why_not(Candidate("team-a", "agent", "a", pinned_release="v1")) == (
        "team-a/agent is pinned to v1 (spec.release)")
    assert why_not(Candidate("team-a", "agent", "a", tenant_pin="v0")) == (
        "team-a/agent is pinned to v0 by Tenant a")
    assert why_not(Candidate("team-a", "agent", "a")) == (
        "team-a/agent does not match spec.rollout.selector")


def test_status_lists_the_deployments_serving_the_release_with_their_graph(now):
    from tugboat.api.model_release import ServedBy
    serving = (ServedBy(namespace="team-b", name="agent", graph="int8"),
               ServedBy(namespace="team-a", name="agent", graph=None))
    out = mr.decide(observed(now, targets=(target("agent", "team-a"),), served_by=serving), now)
    assert [(b.namespace, b.graph) for b in out.status.served_by] == [("team-a", None), ("team-b", "int8")]
