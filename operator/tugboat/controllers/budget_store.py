"""Whether the tenants' shared token budget store answers, as the operator sees it.

A redis PING with a short timeout, remembered per store URL for a few seconds: every
AgentDeployment's gather reads the remembered answer, so thousands of them cost one ping.
Redis sends no events, so `watch` pings on its own schedule and calls back when the answer flips;
nothing else would wake the AgentDeployments. What the answer means is `reconcile.budget_store`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import redis

from ..reconcile.budget_store import StoreProbe

log = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 0.5  # a reconcile waits this long at most for a store that is down
FRESH_SECONDS = 5.0
WATCH_SECONDS = 5.0  # how late a flip may be seen: one ping per interval, whatever the fleet size


def where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def ping(url: str) -> StoreProbe:
    client = redis.Redis.from_url(url, socket_timeout=PING_TIMEOUT_SECONDS,
                                  socket_connect_timeout=PING_TIMEOUT_SECONDS)
    try:
        client.ping()
        return StoreProbe(where(url), True)
    except redis.RedisError as err:
        return StoreProbe(where(url), False, f"{type(err).__name__}: {err}"[:200])
    finally:
        client.close()


class StoreProber:
    """The last answer per URL; `probe` pings again once it is older than `fresh` seconds."""

    def __init__(self, ping: Callable[[str], StoreProbe] = ping,
                 clock: Callable[[], float] = time.monotonic, fresh: float = FRESH_SECONDS):
        self._ping, self._clock, self._fresh = ping, clock, fresh
        self._seen: dict[str, tuple[float, StoreProbe]] = {}
        # Held while pinging: passes arriving meanwhile wait for that answer instead of pinging too.
        self._lock = threading.Lock()

    def probe(self, url: str) -> StoreProbe:
        with self._lock:
            seen = self._seen.get(url)
            if seen is not None and self._clock() - seen[0] < self._fresh:
                return seen[1]
            return self._refresh(url)

    def refresh(self, url: str) -> StoreProbe:
        with self._lock:
            return self._refresh(url)

    def _refresh(self, url: str) -> StoreProbe:
        answer = self._ping(url)
        self._seen[url] = (self._clock(), answer)
        return answer


PROBER = StoreProber()


def watch(url: str, on_flip: Callable[[StoreProbe], None], stop: threading.Event,
          prober: StoreProber = PROBER, interval: float = WATCH_SECONDS) -> None:
    """Ping every `interval` s until `stop`; call `on_flip` whenever reachability changes."""
    last: StoreProbe | None = None
    while not stop.is_set():
        answer = prober.refresh(url)
        if last is not None and answer.reachable != last.reachable:
            log.log(logging.INFO if answer.reachable else logging.WARNING, "budget store %s %s",
                    answer.where, "reachable again" if answer.reachable else f"unreachable: {answer.error}")
            try:
                on_flip(answer)
            except Exception:  # noqa: BLE001 - the watch must outlive one failed fan-out
                log.exception("budget store flip: re-judging AgentDeployments failed")
        last = answer
        stop.wait(interval)
