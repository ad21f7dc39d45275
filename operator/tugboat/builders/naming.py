"""Child object names: `<parent>-<role>-<hash8>`, at most 63 characters. Pure."""

from __future__ import annotations

import hashlib

MAX_NAME = 63


def hash8(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:8]


def child_name(parent: str, role: str, *key: object, limit: int = MAX_NAME) -> str:
    """Truncate the parent, never the role or hash, so names stay unique and traceable."""
    suffix = f"-{role}-{hash8(parent, role, *key)}"
    return f"{parent[: limit - len(suffix)].rstrip('-')}{suffix}"


def owner_reference(owner: dict) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def managed_labels(**extra: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "tugboat", "app.kubernetes.io/part-of": "tugboat", **extra}
