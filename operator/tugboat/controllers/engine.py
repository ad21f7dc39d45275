"""Apply an Outcome: owned objects by server-side apply, then one status write, then events
(on the object, and on the other objects the decision names).

The status write is skipped when nothing changed, so our own writes do not feed a hot loop.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from ..api.base import API_VERSION, StatusBase
from ..api.kinds import Kind
from ..kube.client import Kube
from ..reconcile.outcome import Outcome

log = logging.getLogger(__name__)


def current_status(kind: Kind, obj: dict) -> StatusBase:
    try:
        return kind.status.model_validate(obj.get("status") or {})
    except ValidationError:
        log.warning("%s %s has an unreadable status; starting over", kind.kind,
                    obj["metadata"]["name"])
        return kind.status()


def apply_outcome(kube: Kube, kind: Kind, obj: dict, outcome: Outcome) -> bool:
    """Return True when the status changed."""
    meta = obj["metadata"]
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
        kube.patch_status(API_VERSION, kind.kind, meta["name"], meta.get("namespace"), new)
    for event in outcome.events:
        kube.event(obj, event.type, event.reason, event.message)
    for other in outcome.object_events:
        target = kube.get_or_none(other.api_version, other.kind, other.name, other.namespace)
        if target is not None:  # gone since the decision: nobody to tell
            kube.event(target, other.event.type, other.event.reason, other.event.message)
    return changed
