"""Dev-only faults for tests of canary analysis: an error rate and an added latency.

Decides, per model request, whether to delay it and whether to fail it, from the process's own
settings (`--dev-inject-error-rate`, `--dev-inject-latency-ms`, both off by default). Must never
read anything from a request: a caller cannot switch a fault on, only whoever starts the process.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from .settings import ServeSettings


class InjectedFault(RuntimeError):
    """The request was failed on purpose (dev fault injection)."""


async def inject_faults(settings: ServeSettings, draw: Callable[[], float] = random.random) -> None:
    """Sleep the injected latency, then raise `InjectedFault` for the injected share of requests."""
    if settings.dev_inject_latency_ms:
        await asyncio.sleep(settings.dev_inject_latency_ms / 1000)
    # draw() is in [0, 1): a rate of 0 never fails, a rate of 1 always does.
    if draw() < settings.dev_inject_error_rate:
        raise InjectedFault(f"dev fault injection: --dev-inject-error-rate "
                            f"{settings.dev_inject_error_rate}")


def describe_faults(settings: ServeSettings) -> str | None:
    """One line for the startup log when any fault is on, else None."""
    faults = [f"error rate {settings.dev_inject_error_rate}"] if settings.dev_inject_error_rate else []
    if settings.dev_inject_latency_ms:
        faults.append(f"added latency {settings.dev_inject_latency_ms} ms")
    return f"DEV FAULT INJECTION ON: {', '.join(faults)}" if faults else None
