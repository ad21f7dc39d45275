"""Token budget guardrail (cost guard): tokens per tenant per fixed time window.

Decides whether a request may spend `maxTokens` now, reserving them so that concurrent requests
cannot overrun the budget, and settles the reservation with the tokens actually delivered.
Windows start at a tenant's first request after the previous one ended. State lives in this
process only (each replica enforces its own share). Must not sleep or read the wall clock
itself: the clock is injected so tests can drive time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .guardrail_config import TokenBudgetConfig
from .verdict import Verdict, allow, deny

GUARDRAIL = "token_budget"


@dataclass
class _Window:
    start: float
    used: int = 0


@dataclass(frozen=True)
class Reservation:
    tenant: str
    window_start: float
    tokens: int


class TokenBudget:
    """Per-tenant fixed-window token accounting."""

    def __init__(self, config: TokenBudgetConfig, clock: Callable[[], float] = time.monotonic):
        self._config = config
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def reserve(self, tenant: str, tokens: int) -> tuple[Verdict, Reservation | None]:
        """Reserve `tokens` for `tenant`, or deny with the seconds until the window resets."""
        limit = self._config.tokens_per_window
        if tokens > limit:
            return deny(GUARDRAIL, 400, "RequestExceedsBudget",
                        f"maxTokens {tokens} exceeds tokenBudget.tokensPerWindow {limit}"), None
        window = self._current_window(tenant)
        if window.used + tokens > limit:
            retry_after = max(1, math.ceil(window.start + self._config.window_seconds - self._clock()))
            return deny(GUARDRAIL, 429, "TokenBudgetExhausted",
                        f"tenant {tenant} used {window.used} of {limit} tokens in this "
                        f"{self._config.window_seconds:g}s window",
                        retry_after=retry_after), None
        window.used += tokens
        return allow(GUARDRAIL), Reservation(tenant, window.start, tokens)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Give back the unused part of a reservation if its window is still current."""
        window = self._windows.get(reservation.tenant)
        if window is not None and window.start == reservation.window_start:
            window.used -= max(0, reservation.tokens - used_tokens)

    def used(self, tenant: str) -> int:
        return self._current_window(tenant).used

    def _current_window(self, tenant: str) -> _Window:
        now = self._clock()
        window = self._windows.get(tenant)
        if window is None or now >= window.start + self._config.window_seconds:
            window = _Window(start=now)
            self._windows[tenant] = window
        return window
