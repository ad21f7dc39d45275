"""lastTransitionTime moves only when status flips; everything else refreshes in place."""

from datetime import timedelta

from tugboat.api.base import ConditionStatus
from tugboat.conditions import find, is_true, set_condition


def test_new_condition_appended(now):
    conds = set_condition([], "Valid", True, "SpecValid", "ok", 3, now)
    assert len(conds) == 1
    c = conds[0]
    assert (c.type, c.status, c.reason, c.observed_generation) == ("Valid", "True", "SpecValid", 3)
    assert c.last_transition_time == now


def test_same_status_keeps_transition_time(now):
    conds = set_condition([], "Ready", False, "Accepted", "a", 1, now)
    later = now + timedelta(minutes=5)
    conds = set_condition(conds, "Ready", False, "Waiting", "b", 2, later)
    c = find(conds, "Ready")
    assert c.last_transition_time == now
    assert (c.reason, c.message, c.observed_generation) == ("Waiting", "b", 2)


def test_flip_moves_transition_time(now):
    conds = set_condition([], "Ready", False, "Accepted", "", 1, now)
    later = now + timedelta(seconds=30)
    conds = set_condition(conds, "Ready", ConditionStatus.TRUE, "Reconciled", "", 1, later)
    assert find(conds, "Ready").last_transition_time == later
    assert is_true(conds, "Ready")


def test_order_preserved(now):
    conds = set_condition([], "Valid", True, "SpecValid", "", 1, now)
    conds = set_condition(conds, "Ready", False, "Accepted", "", 1, now)
    conds = set_condition(conds, "Valid", False, "InvalidSpec", "x", 2, now)
    assert [c.type for c in conds] == ["Valid", "Ready"]
