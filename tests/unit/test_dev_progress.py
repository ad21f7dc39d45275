"""Progress lines of long local commands: numbered, timed, a heartbeat while waiting, a summary."""
import pytest

from tugboat.dev.progress import Steps


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_steps_are_numbered_timed_and_summarised():
    lines, clock = [], Clock()
    steps = Steps(lines.append, total=2, clock=clock)
    with steps.step("control plane", "creating", usually="10-30 s"):
        clock.now += 12.5
    with steps.step("node pools"):
        steps.note("cpu x2")
        clock.now += 0.5
    assert lines == [
        "[dev up 1/2 +0s] control plane: creating (usually 10-30 s)",
        "[dev up 1/2 +12s] control plane done in 12.5 s",
        "[dev up 2/2 +12s] node pools",
        "[dev up 2/2 +12s] cpu x2",
        "[dev up 2/2 +13s] node pools done in 0.5 s",
    ]
    assert steps.summary("cluster t") == (
        "[dev up] cluster t ready in 13.0 s: control plane 12.5 s, node pools 0.5 s")


def test_a_wait_says_it_is_still_waiting_once_per_heartbeat():
    lines, clock = [], Clock()
    steps = Steps(lines.append, total=1, clock=clock, heartbeat=10)
    with steps.step("quota controller"):
        for _ in range(50):  # 25 s of a 0.5 s poll loop
            clock.now += 0.5
            steps.tick("the quota controller")
    waiting = [line for line in lines if "still waiting" in line]
    assert waiting == ["[dev up 1/1 +10s] still waiting for the quota controller (10 s)",
                       "[dev up 1/1 +20s] still waiting for the quota controller (20 s)"]


def test_a_failed_step_says_so_with_the_first_line_of_the_error_and_re_raises():
    lines, clock = [], Clock()
    steps = Steps(lines.append, total=3, clock=clock)
    with pytest.raises(RuntimeError), steps.step("CRDs"):
        clock.now += 2
        raise RuntimeError("CRDs not established: timed out\nsecond line")
    assert lines[-1] == "[dev up 1/3 +2s] CRDs failed after 2.0 s: CRDs not established: timed out"
    assert steps.summary("x").endswith(": CRDs 2.0 s")
