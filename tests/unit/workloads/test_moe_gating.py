"""Top-k routing: gate renormalisation, capacity and GShard slot priority, dropped-slot
accounting, and the aux / z losses against hand-computed values."""

import math

import pytest
import torch

from tugboat_workloads.moe.gating import expert_capacity, route, slot_positions

ONE = torch.tensor(1.0)
LN3 = math.log(3.0)


def _logits(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_balance_and_z_loss_match_hand_computation():
    # Three tokens prefer expert 0 with p=0.75, one prefers expert 1 with p=0.75.
    logits = _logits([[LN3, 0.0], [LN3, 0.0], [0.0, LN3], [LN3, 0.0]])
    r = route(logits, top_k=1, temperature=ONE, capacity_factor=None)
    # f = [3/4, 1/4]; P = [0.625, 0.375]; E * sum f*P = 2 * (0.46875 + 0.09375) = 1.125
    assert r.load.tolist() == pytest.approx([0.75, 0.25])
    assert r.mean_prob.tolist() == pytest.approx([0.625, 0.375])
    assert float(r.balance_loss) == pytest.approx(1.125)
    # logsumexp([ln3, 0]) = ln 4 for every token
    assert float(r.z_loss) == pytest.approx(math.log(4.0) ** 2, rel=1e-6)


def test_uniform_router_has_unit_balance_loss_and_max_entropy():
    r = route(torch.zeros(8, 4), top_k=1, temperature=ONE, capacity_factor=None)
    assert float(r.entropy) == pytest.approx(math.log(4.0), rel=1e-6)
    assert r.mean_prob.tolist() == pytest.approx([0.25] * 4)
    # sum_e f_e = 1 and P_e = 1/E give exactly 1 whatever the tie-breaking chose
    assert float(r.balance_loss) == pytest.approx(1.0)


def test_top_k_gates_are_renormalised_and_ordered():
    logits = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
    r = route(logits, top_k=2, temperature=ONE, capacity_factor=None)
    assert r.expert_index.shape == (32, 2)
    assert torch.allclose(r.gate_weight.sum(dim=1), torch.ones(32))
    assert bool((r.gate_weight[:, 0] >= r.gate_weight[:, 1]).all())
    assert torch.equal(r.expert_index[:, 0], logits.argmax(dim=1))
    assert float(r.load.sum()) == pytest.approx(1.0)
    assert float(r.dropped_fraction) == 0.0


def test_capacity_drops_overflowing_slots_in_token_order():
    # capacity = ceil(1.0 * 4 slots / 2 experts) = 2; expert 0 is asked for three times.
    logits = _logits([[LN3, 0.0], [LN3, 0.0], [0.0, LN3], [LN3, 0.0]])
    r = route(logits, top_k=1, temperature=ONE, capacity_factor=1.0)
    assert r.keep.squeeze(1).tolist() == [True, True, True, False]
    assert float(r.dropped_fraction) == pytest.approx(0.25)
    assert r.gate_weight.squeeze(1).tolist() == [1.0, 1.0, 1.0, 0.0]
    # the load counts what the router asked for, before drops
    assert r.load.tolist() == pytest.approx([0.75, 0.25])


def test_first_choices_are_queued_before_second_choices():
    # capacity = ceil(0.75 * 4 / 3) = 1: each expert keeps one slot; both first choices win.
    logits = _logits([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0]])
    r = route(logits, top_k=2, temperature=ONE, capacity_factor=0.75)
    assert r.expert_index.tolist() == [[0, 1], [1, 0]]
    assert slot_positions(r.expert_index, 3).tolist() == [[0, 1], [0, 1]]
    assert r.keep.tolist() == [[True, False], [True, False]]
    assert float(r.dropped_fraction) == pytest.approx(0.5)


def test_expert_capacity_is_a_ceiling_tensor():
    assert float(expert_capacity(torch.tensor(1024), 8, 1.25)) == 160.0
    assert float(expert_capacity(torch.tensor(6), 8, 1.25)) == 1.0
    assert float(expert_capacity(torch.tensor(7), 2, 1.0)) == 4.0


def test_temperature_softens_gates_without_changing_the_choice():
    logits = torch.randn(64, 8, generator=torch.Generator().manual_seed(1)) * 3
    cold = route(logits, 2, torch.tensor(1.0), None)
    hot = route(logits, 2, torch.tensor(4.0), None)
    assert torch.equal(cold.expert_index, hot.expert_index)
    assert float(hot.entropy) > float(cold.entropy) + 0.3


def test_balance_loss_ignores_the_guards_temperature_and_noise():
    # Otherwise a temperature bump would scale the balancing gradient by 1/T.
    logits = torch.randn(64, 8, generator=torch.Generator().manual_seed(3)) * 2
    plain = route(logits, 2, torch.tensor(1.0), None)
    hot = route(logits, 2, torch.tensor(3.0), None)
    assert torch.allclose(plain.mean_prob, hot.mean_prob)
    assert torch.allclose(plain.balance_loss, hot.balance_loss)


def test_gate_noise_changes_routing_only_when_enabled():
    logits = torch.randn(256, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    quiet = route(logits, 2, ONE, None, noise_std=0.0)
    noisy = route(logits, 2, ONE, None, noise_std=2.0)
    assert not torch.equal(quiet.expert_index, noisy.expert_index)
    assert torch.equal(quiet.expert_index, route(logits, 2, ONE, None).expert_index)
