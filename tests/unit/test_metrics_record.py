"""The operator's object metrics from reconcile outcomes: transitions counted once, series of
deleted objects removed, phases counted without reading the API."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tugboat.api.kinds import MODEL_RELEASE, TRAINING_RUN
from tugboat.api.model_release import (
    CheckProgress,
    Measurement,
    ModelReleaseStatus,
    RolloutStatus,
    TargetPlan,
    TargetState,
    Verdict,
)
from tugboat.api.training_run import TrainingMetrics, TrainingRunStatus
from tugboat.controllers.metrics_record import Recorder, rollout_changes
from tugboat.reconcile.outcome import Outcome


def plan(name="agent", step=0, weight=0, state=TargetState.PROGRESSING, checks=()) -> TargetPlan:
    return TargetPlan(namespace="team-a", name=name, tenant="acme", wave=0, step=step, weight=weight,
                      state=state, checks=list(checks))


def error_rate(value: float | None) -> CheckProgress:
    last = Measurement(check="error-rate", metric="error_rate", value=value, threshold=0.05,
                       direction="below", verdict=Verdict.PASS, time="2026-01-01T00:00:00Z")
    return CheckProgress(name="error-rate", last=last)


def rollout(*targets: TargetPlan) -> RolloutStatus:
    return RolloutStatus(targets=list(targets))


def test_steps_advanced_are_the_difference_to_the_status_read():
    [c] = rollout_changes(rollout(plan(step=1, weight=10)), rollout(plan(step=3, weight=100)))
    assert (c.steps_advanced, c.weight, c.rolled_back) == (2, 100, False)


def test_a_rollback_counts_once_on_its_transition():
    rolled = plan(step=1, state=TargetState.ROLLED_BACK)
    assert rollout_changes(rollout(plan(step=1)), rollout(rolled))[0].rolled_back
    assert not rollout_changes(rollout(rolled), rollout(rolled))[0].rolled_back


def test_a_new_target_starts_from_step_zero_and_no_plan_means_no_changes():
    [c] = rollout_changes(None, rollout(plan(step=1, weight=10)))
    assert (c.steps_advanced, c.rolled_back) == (1, False)
    assert rollout_changes(rollout(plan()), None) == []


def test_last_measurements_with_a_value_are_reported_with_their_thresholds():
    [c] = rollout_changes(None, rollout(plan(checks=[error_rate(0.01)])))
    assert c.measured == (("error-rate", 0.01, 0.05),)
    [c] = rollout_changes(None, rollout(plan(checks=[error_rate(None), CheckProgress(name="latency")])))
    assert c.measured == ()


def _value(name: str, **labels) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _release_obj(name: str, rollout_status: RolloutStatus) -> dict:
    return {"metadata": {"name": name, "namespace": "ml"}, "spec": {},
            "status": {"rollout": rollout_status.model_dump(by_alias=True, mode="json")}}


def test_release_metrics_follow_the_outcome_and_go_away_with_the_object():
    rec = Recorder()
    at_step_1 = rollout(plan(name="agent-x", step=1, weight=10))
    at_step_3 = rollout(plan(name="agent-x", step=3, weight=50, checks=[error_rate(0.01)]))
    outcome = Outcome(status=ModelReleaseStatus(phase="RollingOut", rollout=at_step_3))
    target = {"namespace": "ml", "release": "rel-metrics", "target_namespace": "team-a", "target": "agent-x"}
    before = _value("tugboat_objects", kind="ModelRelease", phase="RollingOut") or 0
    rec.record(MODEL_RELEASE, _release_obj("rel-metrics", at_step_1), outcome)
    # The next pass reads the status the last one wrote: nothing advanced, nothing counted again.
    rec.record(MODEL_RELEASE, _release_obj("rel-metrics", at_step_3), outcome)
    assert _value("tugboat_rollout_steps_total", **target) == 2
    assert _value("tugboat_canary_weight_percent", **target, tenant="acme") == 50
    assert _value("tugboat_objects", kind="ModelRelease", phase="RollingOut") == before + 1
    assert _value("tugboat_analysis_value", **target, check="error-rate") == 0.01
    assert _value("tugboat_analysis_threshold", **target, check="error-rate") == 0.05
    rec.forget(MODEL_RELEASE, "rel-metrics", "ml")
    assert _value("tugboat_canary_weight_percent", **target, tenant="acme") is None
    assert _value("tugboat_analysis_value", **target, check="error-rate") is None
    assert _value("tugboat_objects", kind="ModelRelease", phase="RollingOut") == before


def test_training_gauges_carry_the_status_metrics_and_the_spec_slos():
    rec = Recorder()
    obj = {"metadata": {"name": "tr-metrics", "namespace": "ml"},
           "spec": {"routerHealth": {"minEntropy": 1.3}}}
    status = TrainingRunStatus(phase="Running", metrics=TrainingMetrics(loss=2.5, tokens_per_second=900.0,
                                                                          router_entropy=1.7))
    rec.record(TRAINING_RUN, obj, Outcome(status=status))
    run = {"namespace": "ml", "training_run": "tr-metrics"}
    assert _value("tugboat_training_loss", **run) == 2.5
    assert _value("tugboat_training_tokens_per_second", **run) == 900.0
    assert _value("tugboat_training_router_entropy_min", **run) == 1.3
    assert _value("tugboat_training_expert_load_imbalance_max", **run) == 1.6
    assert _value("tugboat_training_expert_load_imbalance", **run) is None  # not reported yet
    rec.forget(TRAINING_RUN, "tr-metrics", "ml")
    assert _value("tugboat_training_loss", **run) is None
