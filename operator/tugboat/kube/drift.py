"""Is a server-side apply needed? Pure: the desired manifest, stamped with a digest of itself,
against the cached object.

The apply is skipped only when the cached object carries the digest of this very manifest (so a
field we stopped declaring still gets its apply, which removes it) and still holds every value we
declare (so a change by someone else is put back). Fields the server or others added do not count.
"""

from __future__ import annotations

import copy
import hashlib
import json

APPLIED = "tugboat.dev/applied"  # annotation: digest of the manifest we last applied


def stamped(manifest: dict) -> dict:
    """A copy of `manifest` annotated with the digest of its content (without that annotation)."""
    out = copy.deepcopy(manifest)
    annotations = out.setdefault("metadata", {}).get("annotations") or {}
    annotations.pop(APPLIED, None)
    digest = hashlib.sha256(json.dumps(out, sort_keys=True, default=str).encode()).hexdigest()[:20]
    out["metadata"]["annotations"] = {**annotations, APPLIED: digest}
    return out


def covers(held: object, desired: object) -> bool:
    """Every value of `desired` is in `held`: maps may hold more keys, lists match item by item."""
    if isinstance(desired, dict):
        return isinstance(held, dict) and all(k in held and covers(held[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(held, list) and len(held) == len(desired)
                and all(covers(h, d) for h, d in zip(held, desired, strict=True)))
    return held == desired


def apply_needed(stamped_manifest: dict, held: dict | None) -> bool:
    if held is None or held["metadata"].get("deletionTimestamp"):
        return True
    return not covers(held, stamped_manifest)
