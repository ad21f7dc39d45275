"""Token budget guardrail (cost guard): tokens per tenant per fixed time window.

Decides whether a request may spend `maxTokens` now, reserving them so that concurrent requests
cannot overrun the budget, and settles the reservation with the tokens its models actually
generated (a fallback answer's discarded primary attempt and a refused answer included; a fallback
may generate more than was reserved, and that overrun is charged too).
Without a store, windows start at a tenant's first request after the previous one ended and
state lives in this process only (each replica enforces its own share). With a shared store
(budget_store), every replica of the tenant counts against one epoch-aligned window; when the
store is unreachable, tokenBudget.onStoreUnavailable decides: FailOpen allows the request
unaccounted, FailClosed answers 503. Must not sleep or read the wall clock itself: the clock
is injected so tests can drive time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .budget_store import RedisBudgetStore, StoreUnavailable
from .guardrail_config import TokenBudgetConfig
from .verdict import Verdict, allow, deny

GUARDRAIL = "token_budget"
# Seconds a caller is told to wait when the store is down and the budget fails closed.
STORE_RETRY_AFTER = 5


@dataclass
class _Window:
    start: float
    used: int = 0


@dataclass(frozen=True)
class Reservation:
    tenant: str
    # In-process: the window's start; with a store: the epoch window index. None: not counted.
    window: float | int | None
    tokens: int


class TokenBudget:
    """Per-tenant fixed-window token accounting."""

    def __init__(self, config: TokenBudgetConfig, clock: Callable[[], float] = time.monotonic,
                 store: RedisBudgetStore | None = None,
                 store_health: Callable[[bool], None] = lambda up: None):
        self._config = config
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._store = store
        self._store_health = store_health

    def reserve(self, tenant: str, tokens: int) -> tuple[Verdict, Reservation | None]:
        """Reserve `tokens` for `tenant`, or deny with the seconds until the window resets."""
        limit = self._config.tokens_per_window
        if tokens > limit:
            return deny(GUARDRAIL, 400, "RequestExceedsBudget",
                        f"maxTokens {tokens} exceeds tokenBudget.tokensPerWindow {limit}"), None
        if self._store is not None:
            return self._reserve_shared(tenant, tokens)
        window = self._current_window(tenant)
        if window.used + tokens > limit:
            retry_after = max(1, math.ceil(window.start + self._config.window_seconds - self._clock()))
            return deny(GUARDRAIL, 429, "TokenBudgetExhausted",
                        f"tenant {tenant} used {window.used} of {limit} tokens in this "
                        f"{self._config.window_seconds:g}s window",
                        retry_after=retry_after), None
        window.used += tokens
        return allow(GUARDRAIL), Reservation(tenant, window.start, tokens)

    def settle(self, reservation: Reservation, generated_tokens: int) -> None:
        """Correct a reservation to what was generated, if its window is still current: give back
        the unused part, or charge the overrun."""
        delta = generated_tokens - reservation.tokens
        if reservation.window is None or not delta:
            return
        if self._store is not None:
            try:
                self._store.settle(reservation.tenant, int(reservation.window), delta)
                self._store_health(True)
            except StoreUnavailable:
                self._store_health(False)
            return
        window = self._windows.get(reservation.tenant)
        if window is not None and window.start == reservation.window:
            window.used += delta

    def used(self, tenant: str) -> int:
        if self._store is not None:
            return self._store.used(tenant)
        return self._current_window(tenant).used

    def _reserve_shared(self, tenant: str, tokens: int) -> tuple[Verdict, Reservation | None]:
        limit = self._config.tokens_per_window
        try:
            result = self._store.reserve(tenant, tokens, limit)
        except StoreUnavailable as err:
            self._store_health(False)
            if self._config.on_store_unavailable == "FailClosed":
                return deny(GUARDRAIL, 503, "BudgetStoreUnavailable",
                            f"token budget store unreachable and tokenBudget.onStoreUnavailable "
                            f"is FailClosed: {err}", retry_after=STORE_RETRY_AFTER), None
            return allow(GUARDRAIL), Reservation(tenant, None, tokens)
        self._store_health(True)
        if not result.granted:
            return deny(GUARDRAIL, 429, "TokenBudgetExhausted",
                        f"tenant {tenant} used {result.used} of {limit} tokens in this "
                        f"{self._config.window_seconds:g}s window (all replicas)",
                        retry_after=result.retry_after), None
        return allow(GUARDRAIL), Reservation(tenant, result.window_index, tokens)

    def _current_window(self, tenant: str) -> _Window:
        now = self._clock()
        window = self._windows.get(tenant)
        if window is None or now >= window.start + self._config.window_seconds:
            window = _Window(start=now)
            self._windows[tenant] = window
        return window
