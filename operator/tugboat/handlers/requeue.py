"""Wake-ups for objects: one queue, one thread, at most one pending wake-up per object.

A reconcile asks to be woken (its Outcome's `requeue_after`: a pause ending, the next analysis
interval, a stage to poll), or failed and is retried with exponential back-off. Either way the object
is queued once: a later request for an earlier time moves its wake-up forward, a later one is
dropped, so a storm of events or failures never grows a chain of timers per object. A due wake-up
stays in the queue until a worker is free to run it: while every worker is busy, a burst of events
for one object still collapses into one pass, instead of lining up behind the busy workers. An
object's wake-up that falls due while its pass runs (the echo of that pass's own status write)
waits for the pass to end: one object never holds two workers, one of them idle on its lock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("tugboat.requeue")

BACKOFF_BASE = 1.0
BACKOFF_MAX = 300.0


def backoff(failures: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Seconds before retry number `failures` (1, 2, ...): base, 2*base, 4*base, ... up to cap."""
    return min(cap, base * 2 ** max(0, failures - 1))


class RequeueQueue:
    """`schedule(key, delay, fn)` runs fn() once, `delay` seconds from now (earliest request wins)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, workers: int = 4):
        self._clock = clock
        # Due reconciles run here, so one slow pass never delays another object's wake-up.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tugboat-requeued")
        self._free = threading.Semaphore(workers)
        self._due: dict[Hashable, float] = {}
        self._jobs: dict[Hashable, Callable[[], None]] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        self._failures: dict[Hashable, int] = {}
        self._running: set[Hashable] = set()
        self._held: set[Hashable] = set()  # due, but their pass is still running
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def schedule(self, key: Hashable, delay: float, fn: Callable[[], None]) -> bool:
        """Queue a wake-up; False when an earlier (or equal) one is already queued for `key`."""
        at = self._clock() + max(0.0, delay)
        with self._cv:
            if key in self._due and self._due[key] <= at:
                return False
            self._due[key], self._jobs[key] = at, fn
            heapq.heappush(self._heap, (at, next(self._order), key))
            self._ensure_thread()
            self._cv.notify()
        return True

    def failed(self, key: Hashable, fn: Callable[[], None]) -> float:
        """Count a failure of `key` and queue its retry after the back-off; returns the delay."""
        with self._cv:
            self._failures[key] = self._failures.get(key, 0) + 1
            delay = backoff(self._failures[key])
        self.schedule(key, delay, fn)
        return delay

    def succeeded(self, key: Hashable) -> None:
        with self._cv:
            self._failures.pop(key, None)

    def pending(self) -> int:
        with self._cv:
            return len(self._due)

    def due(self) -> int:
        """Wake-ups whose time has come: waiting for a worker (or for their object's running pass)."""
        now = self._clock()
        with self._cv:
            return sum(1 for at in self._due.values() if at <= now)

    def due_in(self, key: Hashable) -> float | None:
        with self._cv:
            at = self._due.get(key)
        return None if at is None else at - self._clock()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="tugboat-requeue", daemon=True)
            self._thread.start()

    def _next_due(self) -> tuple[Hashable, Callable[[], None]] | None:
        """Wait for the earliest wake-up of an object not running now and pop it; None once stopped."""
        with self._cv:
            while not self._stopped:
                if not self._heap:
                    self._cv.wait()
                    continue
                at, _, key = self._heap[0]
                if self._due.get(key) != at:  # superseded by an earlier request
                    heapq.heappop(self._heap)
                    continue
                wait = at - self._clock()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if key in self._running:
                    self._held.add(key)  # back in the heap when its pass ends
                    continue
                del self._due[key]
                self._running.add(key)
                return key, self._jobs.pop(key)
            return None

    def _run(self) -> None:
        while True:
            self._free.acquire()  # a worker first, then the earliest due wake-up
            due = self._next_due()
            if due is None:
                self._free.release()
                return
            try:
                self._pool.submit(self._guarded, *due)
            except RuntimeError:  # the interpreter is exiting: its pools take no more work
                return

    def _guarded(self, key: Hashable, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # noqa: BLE001 - one failing wake-up must not stop the others
            log.exception("requeued reconcile failed")
        finally:
            with self._cv:
                self._running.discard(key)
                if key in self._held:
                    self._held.discard(key)
                    heapq.heappush(self._heap, (self._due[key], next(self._order), key))
                    self._cv.notify()
            self._free.release()
