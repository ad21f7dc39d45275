"""Child object names `<parent>-<role>-<hash8>` and label values, both at most 63 characters. Pure.

A custom resource's name is a DNS subdomain (253 characters, dots allowed); what we derive from
it must fit where a DNS label is required (Service names, label values).
"""

from __future__ import annotations

import hashlib

MAX_NAME = 63


def hash8(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:8]


def child_name(parent: str, role: str, *key: object, limit: int = MAX_NAME) -> str:
    """A DNS-1123 label: the parent's dots become dashes (the hash, of the parent as it is, keeps
    `a.b` and `a-b` apart); the parent is truncated, never the role or hash."""
    suffix = f"-{role}-{hash8(parent, role, *key)}"
    stem = parent.replace(".", "-")[: limit - len(suffix)].rstrip("-")
    return f"{stem}{suffix}"


def label_value(name: str) -> str:
    """Object names may exceed a label value's 63 characters; keep long ones unique with a hash."""
    return name if len(name) <= MAX_NAME else f"{name[:54].rstrip('-.')}-{hash8(name)}"


def owner_reference(owner: dict) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def managed_labels(**extra: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "tugboat", "app.kubernetes.io/part-of": "tugboat", **extra}
