"""Shared token budget counter in Redis: one count per tenant per epoch-aligned window.

Every replica of every AgentDeployment of a tenant reserves from the same key, so the budget is
the tenant's, not each process's. Window index = floor(now / window_seconds); the key
`tugboat:budget:{tenant}:{index}` expires after two windows. Reserve is one Lua script (check
and add are atomic across replicas). Calls are blocking but bounded by a short socket timeout,
since they run on the request path; every failure surfaces as StoreUnavailable so that the
caller alone decides between fail-open and fail-closed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

SOCKET_TIMEOUT_SECONDS = 0.25

# KEYS[1] window key; ARGV tokens, limit, ttl ms. Returns {granted 0/1, used after the call}.
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local tokens = tonumber(ARGV[1])
if used + tokens > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], tokens)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, used}
"""

# Refund only into a window that still exists: an expired one must not be recreated.
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return 0
"""


class StoreUnavailable(Exception):
    """The budget store could not be reached or answered with an error."""


@dataclass(frozen=True)
class StoreReservation:
    granted: bool
    used: int
    window_index: int
    retry_after: int


class RedisBudgetStore:
    """Atomic per-window token counts shared by all processes pointing at one Redis."""

    def __init__(self, url: str, window_seconds: float, clock: Callable[[], float] = time.time,
                 timeout: float = SOCKET_TIMEOUT_SECONDS):
        self._window = window_seconds
        self._clock = clock
        self._ttl_ms = max(1, math.ceil(2 * window_seconds * 1000))
        self._client = redis.Redis.from_url(url, socket_timeout=timeout,
                                            socket_connect_timeout=timeout)
        self._reserve = self._client.register_script(_RESERVE)
        self._settle = self._client.register_script(_SETTLE)

    def reserve(self, tenant: str, tokens: int, limit: int) -> StoreReservation:
        now = self._clock()
        index = math.floor(now / self._window)
        granted, used = self._call(self._reserve, tenant, index, [tokens, limit, self._ttl_ms])
        retry_after = max(1, math.ceil((index + 1) * self._window - now))
        return StoreReservation(bool(granted), int(used), index, retry_after)

    def settle(self, tenant: str, window_index: int, delta: int) -> None:
        """Add `delta` (used - reserved, so usually negative) to the reservation's window."""
        if delta:
            self._call(self._settle, tenant, window_index, [delta])

    def used(self, tenant: str) -> int:
        index = math.floor(self._clock() / self._window)
        try:
            return int(self._client.get(_key(tenant, index)) or 0)
        except redis.RedisError as err:
            raise StoreUnavailable(str(err)) from err

    def reachable(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._client.close()

    def _call(self, script, tenant: str, index: int, args: list):
        try:
            return script(keys=[_key(tenant, index)], args=args)
        except redis.RedisError as err:
            raise StoreUnavailable(f"budget store: {err}") from err


def _key(tenant: str, index: int) -> str:
    return f"tugboat:budget:{tenant}:{index}"
