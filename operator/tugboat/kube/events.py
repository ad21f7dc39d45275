"""Events are posted from a queue by a few threads, as client-go's recorder posts from its own: a
reconcile does not wait for a round trip that decides nothing, and a burst of them (a thousand new
objects) costs the reconciles no latency. Bounded: when the API server falls far behind, new events
are dropped and counted (an Event is best effort; the status says the same)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ..metrics import EVENTS_DROPPED

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000
POSTERS = 4  # one poster falls behind a burst: each POST waits a round trip on a busy API server


class EventSink:
    def __init__(self, post: Callable[[dict], None], size: int = QUEUE_SIZE, posters: int = POSTERS):
        self._post = post
        self._queue: queue.Queue[dict | threading.Barrier] = queue.Queue(maxsize=size)
        self._posters = posters
        for i in range(posters):
            threading.Thread(target=self._run, name=f"tugboat-events-{i}", daemon=True).start()

    def put(self, body: dict) -> None:
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            EVENTS_DROPPED.inc()
            log.warning("event queue full: dropped %s on %s", body["reason"], body["involvedObject"]["name"])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was posted (or failed); False if not within `timeout`."""
        # One barrier, queued once per poster: all of them reach it once what came before is done.
        barrier = threading.Barrier(self._posters + 1)
        try:
            for _ in range(self._posters):
                self._queue.put(barrier, timeout=timeout)
            barrier.wait(timeout)
        except (queue.Full, threading.BrokenBarrierError):
            barrier.abort()  # the posters already waiting on it go back to work
            return False
        return True

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            if isinstance(body, threading.Barrier):
                try:
                    body.wait()
                except threading.BrokenBarrierError:
                    pass  # the flush gave up waiting
                continue
            try:
                self._post(body)
            except Exception:  # noqa: BLE001 - one bad event must not stop the rest
                log.exception("posting event %s failed", body.get("reason"))
