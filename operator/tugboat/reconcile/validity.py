"""The first step of every reconcile: is the spec valid, and if not, why.

Pure. Each kind adds its own semantic checks (what the CRD schema cannot see) as a chain of
functions returning None or (reason, message); the first failure wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from ..api.base import StatusBase
from ..reasons import Reason
from .outcome import Meta, Outcome, invalid, parse_spec, with_validity

S = TypeVar("S", bound=BaseModel)
Check = Callable[[S], tuple[Reason, str] | None]


def validate(meta: Meta, spec_model: type[S], raw_spec: dict, status: StatusBase,
             checks: Iterable[Check], now: datetime) -> tuple[S | None, StatusBase, Outcome | None]:
    """Return (spec, status with Valid=True, None) or (None, status, the Invalid outcome)."""
    spec, error = parse_spec(spec_model, raw_spec)
    if spec is None:
        return None, status, invalid(status, Reason.INVALID_SPEC, error, meta.generation, now)
    for check in checks:
        failure = check(spec)
        if failure is not None:
            reason, message = failure
            return None, status, invalid(status, reason, message, meta.generation, now)
    ok = with_validity(status, True, Reason.SPEC_VALID, "spec is valid", meta.generation, now)
    return spec, ok, None
