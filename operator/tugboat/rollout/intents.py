"""Manual control of a rollout, as people (through `kubectl tugboat`) ask for it. Pure.

An intent is one annotation on the ModelRelease, `tugboat.dev/rollout-intent: <verb>@<token>`:
an annotation, not a spec field, so a GitOps tool never sees drift, and never a status write by
anyone but the operator. The last one written wins, which keeps pause/resume in order. The
status records the value it acted on (`status.rollout.handledIntent`), so an annotation seen
again after a restart or on the next pass is not applied twice; a new request needs a new token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ..api.base import GROUP

ANNOTATION = f"{GROUP}/rollout-intent"
_VALUE = re.compile(r"^(?P<verb>[a-z-]+)(@(?P<token>[A-Za-z0-9._:-]{1,64}))?$")


class IntentVerb(StrEnum):
    PROMOTE = "promote"  # end the current step's pause (its analysis must still pass)
    PROMOTE_FULL = "promote-full"  # skip every remaining step and analysis: 100% everywhere
    ABORT = "abort"  # roll back everywhere, as a breach would
    RETRY = "retry"  # after a rollback: start again from the first step of the first wave
    PAUSE = "pause"  # no step ends and no wave starts; analysis (and rollback) goes on
    RESUME = "resume"


@dataclass(frozen=True)
class Intent:
    raw: str  # the annotation value, recorded once handled
    verb: IntentVerb | None  # None: a value nobody can act on (reported, then ignored)


def read_intent(annotations: dict[str, str] | None) -> Intent | None:
    raw = (annotations or {}).get(ANNOTATION)
    if not raw:
        return None
    match = _VALUE.match(raw.strip())
    verbs = {v.value for v in IntentVerb}
    verb = match.group("verb") if match else None
    return Intent(raw=raw, verb=IntentVerb(verb) if verb in verbs else None)


def intent_annotation(verb: IntentVerb, token: str) -> dict[str, str]:
    """What `kubectl tugboat <verb>` writes: a fresh token makes a repeated request a new one."""
    value = f"{verb}@{token}"
    if not _VALUE.match(value):
        raise ValueError(f"token must match [A-Za-z0-9._:-]{{1,64}}: {token!r}")
    return {ANNOTATION: value}
