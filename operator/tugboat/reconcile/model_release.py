"""ModelRelease: validity, then (for now) acceptance. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.kinds import MODEL_RELEASE
from ..api.model_release import ModelReleaseSpec, ModelReleaseStatus, SigningMethod
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .validity import validate


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: ModelReleaseStatus
    sigstore_available: bool


def _signing_supported(sigstore: bool):
    def check(spec: ModelReleaseSpec):
        if spec.signing.method == SigningMethod.SIGSTORE_KEYLESS and not sigstore:
            return (Reason.INVALID_SPEC, "spec.signing.method: SigstoreKeyless needs a Sigstore "
                    "issuer configured for this cluster; use method Key with keySecretRef")
        return None
    return check


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old = observed.meta, observed.status
    checks = [_signing_supported(observed.sigstore_available)]
    spec, status, stop = validate(meta, MODEL_RELEASE.spec, observed.spec, old, checks, now)
    if stop is not None:
        return stop
    status = set_conditions(status, now, meta.generation,
                            ("Ready", False, Reason.ACCEPTED, "spec is valid; export not started"))
    status = status.model_copy(update={"phase": "Pending", "message": None})
    return Outcome(status=status, events=phase_event(old, status, Reason.ACCEPTED, "spec accepted"))
