"""The chaos suite's own checks must be able to fail: steps going back, conditions vanishing,
phases moving backwards, a dead operator or one repeating the same traceback."""

from __future__ import annotations

import pytest

from tests.chaos.faults import Recorder, Sample, assert_no_crash_loop
from tests.chaos.killing import in_order

TB = "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    boom()\n{}\n"


def recorder(*samples: tuple[str, int, set[str]]) -> Recorder:
    rec = Recorder(read=lambda: None)
    rec.samples = [Sample(float(i), p, step, frozenset(c)) for i, (p, step, c) in enumerate(samples)]
    return rec


def test_steps_going_back_or_conditions_vanishing_are_losses():
    recorder(("Running", 10, {"Ready"}), ("Running", 20, {"Ready", "Trained"})).assert_nothing_lost()
    with pytest.raises(AssertionError, match="step went backwards"):
        recorder(("Running", 20, set()), ("Running", 0, set())).assert_nothing_lost()
    with pytest.raises(AssertionError, match="conditions disappeared"):
        recorder(("Running", 1, {"Ready"}), ("Running", 2, set())).assert_nothing_lost()


def test_phases_collapse_repeats_and_must_move_forward():
    rec = recorder(("Starting", 0, set()), ("Running", 1, set()), ("Running", 2, set()),
                   ("Succeeded", 3, set()))
    assert rec.phases() == ["Starting", "Running", "Succeeded"]
    order = ["Pending", "Starting", "Running", "Succeeded"]
    assert in_order(rec.phases(), order)
    assert not in_order(["Running", "Starting"], order)
    assert not in_order(["Running", "Exploded"], order)


class _Op:
    def __init__(self, log: str, code: int | None = None):
        self._log, self.proc = log, self
        self.returncode = code

    def poll(self):
        return self.returncode

    def output(self) -> str:
        return self._log


def test_a_dead_operator_or_a_repeated_traceback_is_a_crash_loop():
    assert_no_crash_loop(_Op("ok\n" + TB.format("ValueError: a") + TB.format("KeyError: b")))
    with pytest.raises(AssertionError, match="repeated tracebacks"):
        assert_no_crash_loop(_Op(TB.format("ValueError: a") * 2))
    with pytest.raises(AssertionError, match="exited 1"):
        assert_no_crash_loop(_Op("", code=1))
