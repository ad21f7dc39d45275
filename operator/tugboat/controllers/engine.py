"""Apply an Outcome: owned objects by server-side apply, then one status write, then events
(on the object, and on the other objects the decision names).

The status write is skipped when nothing changed, so our own writes do not feed a hot loop.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import ValidationError

from ..api.base import API_VERSION, StatusBase
from ..api.kinds import Kind
from ..conditions import find
from ..kube.client import Kube
from ..kube.errors import Conflict, Transient
from ..reasons import Reason
from ..reconcile.outcome import Outcome, set_conditions

log = logging.getLogger(__name__)


def current_status(kind: Kind, obj: dict) -> StatusBase:
    try:
        return kind.status.model_validate(obj.get("status") or {})
    except ValidationError:
        log.warning("%s %s has an unreadable status; starting over", kind.kind,
                    obj["metadata"]["name"])
        return kind.status()


RECONCILED = "Reconciled"


def report_failure(kube: Kube, kind: Kind, name: str, namespace: str | None, exc: Exception) -> None:
    """A pass that raised (an API refusal, a bug, a spec a builder chokes on) is said on the
    object: Reconciled=False naming the error, and one Warning event per new message."""
    obj = kube.get_or_none(API_VERSION, kind.kind, name, namespace)
    if obj is None:
        return
    status = current_status(kind, obj)
    message = f"{type(exc).__name__}: {exc}"[:1024]
    old = find(status.conditions, RECONCILED)
    if old is not None and old.status == "False" and old.message == message:
        return  # said already: the retries do not repeat it
    new = set_conditions(status, datetime.now(UTC), obj["metadata"].get("generation") or 0,
                         (RECONCILED, False, Reason.RECONCILE_ERROR, message))
    kube.patch_status(API_VERSION, kind.kind, name, namespace,
                      {"conditions": new.model_dump(by_alias=True, mode="json")["conditions"]},
                      resource_version=obj["metadata"].get("resourceVersion"))
    kube.event(obj, "Warning", Reason.RECONCILE_ERROR, f"reconcile failed, retrying with back-off: {message}")


def _cleared(status: StatusBase, generation: int) -> StatusBase:
    """After a failed pass, the next good one says so (objects never failing carry no such condition)."""
    old = find(status.conditions, RECONCILED)
    if old is None or old.status == "True":
        return status
    return set_conditions(status, datetime.now(UTC), generation, (RECONCILED, True, Reason.RECONCILED,
                                                                  "the last pass succeeded"))


def apply_outcome(kube: Kube, kind: Kind, obj: dict, outcome: Outcome) -> bool:
    """Return True when the status changed."""
    meta = obj["metadata"]
    outcome = replace(outcome, status=_cleared(outcome.status, meta.get("generation") or 0))
    for child in outcome.children:
        kube.apply(child)
    for api_version, child_kind, name, namespace in outcome.deletions:
        kube.delete(api_version, child_kind, name, namespace)
    old = current_status(kind, obj).model_dump(by_alias=True, mode="json")
    new = outcome.status.model_dump(by_alias=True, mode="json")
    changed = old != new
    if changed:
        log.info("%s %s/%s: %s (%s)", kind.kind, meta.get("namespace") or "-", meta["name"],
                 outcome.status.phase, outcome.status.message or "status updated")
        # Merge patch: None values delete stale fields; lists (conditions) are replaced whole.
        try:
            kube.patch_status(API_VERSION, kind.kind, meta["name"], meta.get("namespace"), new,
                              resource_version=meta.get("resourceVersion"))
        except Conflict as exc:
            # Someone wrote the object since this pass read it: decide again from a fresh read.
            raise Transient(f"{kind.kind} {meta['name']} changed since it was read: {exc}") from exc
    for event in outcome.events:
        kube.event(obj, event.type, event.reason, event.message)
    for other in outcome.object_events:
        target = kube.get_or_none(other.api_version, other.kind, other.name, other.namespace)
        if target is not None:  # gone since the decision: nobody to tell
            kube.event(target, other.event.type, other.event.reason, other.event.message)
    return changed
