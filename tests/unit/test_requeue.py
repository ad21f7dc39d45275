"""The requeue queue: one pending wake-up per object, the earliest wins, back-off on failures."""

import threading
import time

from tugboat.handlers.requeue import RequeueQueue, backoff


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_earliest_request_per_object_wins_and_later_ones_are_dropped():
    clock = Clock()
    queue = RequeueQueue(clock, workers=1)
    # The one worker busy: what falls due stays queued (no race with the queue's thread).
    busy, release = threading.Event(), threading.Event()
    queue.schedule("busy", 0, lambda: (busy.set(), release.wait(10)))
    assert busy.wait(10)
    assert queue.schedule("a", 30, lambda: None)
    assert not queue.schedule("a", 60, lambda: None)  # later: dropped
    assert queue.schedule("a", 5, lambda: None)  # earlier: moves the wake-up forward
    assert queue.schedule("b", 10, lambda: None)
    assert queue.pending() == 2 and queue.due_in("a") == 5
    assert queue.due() == 0
    clock.now += 7  # "a" is due, "b" not yet
    assert queue.due() == 1 and queue.pending() == 2
    release.set()
    queue.stop()


def test_a_burst_of_requests_runs_the_object_once():
    runs = []
    done = threading.Event()
    queue = RequeueQueue()

    def job():
        runs.append(time.monotonic())
        done.set()
    for _ in range(50):
        queue.schedule(("ModelRelease", "ns", "r"), 0.2, job)
    assert done.wait(5)
    time.sleep(0.4)
    assert len(runs) == 1 and queue.pending() == 0
    queue.stop()


def test_due_jobs_run_in_deadline_order():
    order, done = [], threading.Event()
    queue = RequeueQueue()
    for key, delay in (("late", 0.3), ("early", 0.05), ("mid", 0.15)):
        queue.schedule(key, delay, lambda k=key: (order.append(k), len(order) == 3 and done.set()))
    assert done.wait(5)
    assert order == ["early", "mid", "late"]
    queue.stop()


def test_failures_back_off_exponentially_per_object_and_success_resets():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(30) == 300.0
    clock = Clock()
    queue = RequeueQueue(clock)
    assert [queue.failed("a", lambda: None) for _ in range(3)] == [1.0, 2.0, 4.0]
    queue.succeeded("a")
    assert queue.failed("a", lambda: None) == 1.0
    queue.stop()


def test_wake_ups_wait_in_the_queue_for_a_free_worker_and_collapse_there():
    """Every worker busy: a burst of wake-ups for one object is one pass once a worker frees up,
    not one pass per wake-up lined up behind the busy workers (issue #12: a Tenant woken by each
    of its AgentDeployments as they were created ran once per deployment)."""
    release, busy, done = threading.Event(), threading.Event(), threading.Event()
    runs = []
    queue = RequeueQueue(workers=1)
    queue.schedule("slow", 0, lambda: (busy.set(), release.wait(5)))
    assert busy.wait(5)
    for _ in range(20):
        queue.schedule("tenant", 0, lambda: (runs.append(1), done.set()))
        time.sleep(0.005)
    assert queue.pending() == 1
    release.set()
    assert done.wait(5)
    time.sleep(0.3)
    assert runs == [1] and queue.pending() == 0
    queue.stop()


def test_a_wake_up_due_while_its_object_runs_waits_for_that_pass_and_runs_once_after():
    """The echo of a pass's own status write: not a second worker blocked on the object's lock
    beside the first, but one more pass once the first has ended."""
    release, started = threading.Event(), threading.Event()
    log, inside = [], []
    queue = RequeueQueue(workers=2)

    def job(n):
        inside.append(n)
        assert len(inside) == 1, "two passes of one object at once"
        log.append(n)
        started.set()
        if n == 0:
            release.wait(5)
        inside.remove(n)
    queue.schedule("a", 0, lambda: job(0))
    assert started.wait(5)
    for i in range(1, 10):
        queue.schedule("a", 0, lambda i=i: job(i))
    time.sleep(0.2)
    assert log == [0] and queue.pending() == 1  # held, not handed to the idle second worker
    release.set()
    deadline = time.monotonic() + 5
    while len(log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert log == [0, 1] and queue.pending() == 0
    queue.stop()
