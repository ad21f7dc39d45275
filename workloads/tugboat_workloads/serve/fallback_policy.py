"""Fallback guardrail: keep the primary answer, switch to the simpler model, or refuse.

Decides from the primary model's confidence (mean max softmax probability of the generated
tokens) and the success detector's score. Must not run a model: the request flow runs the
fallback model when this says so.
"""

from __future__ import annotations

from .guardrail_config import FallbackConfig
from .verdict import Verdict

GUARDRAIL = "fallback"
KEEP = "allow"
FALLBACK = "fallback"
REFUSE = "refuse"


def decide_fallback(confidence: float, score: float, config: FallbackConfig) -> Verdict:
    """Return a verdict whose decision is `allow`, `fallback` or `refuse` (always HTTP 200)."""
    if confidence < config.min_confidence:
        reason = "LowConfidence"
        message = f"confidence {confidence:.3f} below fallback.minConfidence {config.min_confidence:g}"
    elif score < config.min_score:
        reason = "LowScore"
        message = f"success score {score:.3f} below fallback.minScore {config.min_score:g}"
    else:
        return Verdict(guardrail=GUARDRAIL, decision=KEEP)
    decision = FALLBACK if config.mode == "SimpleModel" else REFUSE
    return Verdict(guardrail=GUARDRAIL, decision=decision, status=200, reason=reason, message=message)
