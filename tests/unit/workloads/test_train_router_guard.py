"""Router health summaries, the end-of-run SLO verdict, and the guard's state machine."""

import math

import pytest

from tugboat_workloads.train.router_guard import GuardPolicy, GuardState, observe
from tugboat_workloads.train.router_health import (
    RouterSample,
    final_window,
    judge_slo,
    load_imbalance,
    summarize_router,
)


def _sample(imbalance, entropy):
    return RouterSample(imbalance, entropy, 0.01, (0.25,) * 4)


def test_imbalance_is_max_over_mean():
    assert load_imbalance([0.25, 0.25, 0.25, 0.25]) == 1.0
    assert load_imbalance([0.5, 0.25, 0.125, 0.125]) == 2.0
    assert load_imbalance([1.0, 0.0, 0.0, 0.0]) == 4.0


def test_summary_averages_layers_and_keeps_the_worst():
    sample = summarize_router([[0.25] * 4, [0.5, 0.25, 0.125, 0.125]], [1.3, 0.9], 0.02)
    assert sample.imbalance == pytest.approx(1.5)
    assert sample.entropy == pytest.approx(1.1)
    assert (sample.worst_imbalance, sample.worst_entropy) == (2.0, 0.9)
    assert sample.expert_load == pytest.approx((0.375, 0.25, 0.1875, 0.1875))
    with pytest.raises(ValueError):
        summarize_router([[0.5, 0.5]], [1.0, 1.0], 0.0)


def test_slo_verdict_names_each_breach():
    healthy = judge_slo([_sample(1.2, 1.5), _sample(1.4, 1.3)], 1.6, 1.1)
    assert healthy.healthy and healthy.imbalance == pytest.approx(1.3) and "healthy" in healthy.message
    both = judge_slo([_sample(1.8, 0.9)], 1.6, 1.1)
    assert not both.healthy
    assert "imbalance 1.800 >= 1.6" in both.message and "entropy 0.900 <= 1.1" in both.message
    assert not judge_slo([_sample(1.6, 1.5)], 1.6, 1.1).healthy  # the bound itself is a breach


def test_final_window_is_the_last_tenth_but_at_least_ten():
    samples = list(range(300))
    assert final_window(samples, 300) == samples[-30:]
    assert final_window(samples[:40], 40) == samples[30:40]


POLICY = GuardPolicy(max_imbalance=1.6, min_entropy=1.1, action="TemperatureBump", window=3)


def _feed(policy, state, samples, first_step=1):
    events = []
    for step, sample in enumerate(samples, start=first_step):
        state, intervention = observe(policy, state, step, sample)
        if intervention:
            events.append(intervention)
    return state, events


def test_guard_waits_for_a_full_window_then_bumps_temperature():
    state, events = _feed(POLICY, GuardState(temperature=1.0), [_sample(1.2, 0.8)] * 3)
    assert [e.step for e in events] == [3]
    assert "router entropy 0.800 < 1.1" in events[0].reason
    assert state.temperature == pytest.approx(1.25) and state.noise_std == 0.0
    assert state.interventions == 1 and state.recent == ()  # the window restarts: a cool-down


def test_guard_stays_quiet_when_healthy_or_action_none():
    state, events = _feed(POLICY, GuardState(temperature=1.0), [_sample(1.2, 1.5)] * 10)
    assert events == [] and state.temperature == 1.0
    quiet = GuardPolicy(1.6, 1.1, "None", window=3)
    state, events = _feed(quiet, GuardState(temperature=1.0), [_sample(3.0, 0.1)] * 10)
    assert events == [] and state.temperature == 1.0


def test_noise_and_both_actions_and_limits():
    noise = GuardPolicy(1.6, 1.1, "NoiseInjection", window=2, noise_step=0.3, max_noise=0.5)
    state, events = _feed(noise, GuardState(temperature=1.0), [_sample(2.0, 1.5)] * 10)
    assert [e.noise_std for e in events] == [0.3, 0.5]  # then saturated: no more events
    assert state.temperature == 1.0
    both = GuardPolicy(1.6, 1.1, "Both", window=1, max_temperature=1.5)
    state, events = _feed(both, GuardState(temperature=1.0), [_sample(2.0, 1.5)] * 3)
    assert [(e.temperature, e.noise_std) for e in events] == [(1.25, 0.1), (1.5, 0.2), (1.5, 0.3)]


def test_guard_state_round_trips_through_a_checkpoint_dict():
    state, _ = _feed(POLICY, GuardState(temperature=1.0), [_sample(2.0, 1.5), _sample(1.9, 1.4)])
    assert GuardState.from_dict(state.to_dict()) == state
    assert math.isclose(GuardState.from_dict(state.to_dict()).recent[1][0], 1.9)
