"""Where a run's inputs and outputs may live: its checkpoint prefix, the allowed dataset roots.

Pure path arithmetic on what a spec or a status claims (`..` folded, no file system): a
checkpoint a release exports must sit under its TrainingRun's own storage, whatever MLflow or a
tampered status says; a `file://` dataset must sit under a root the platform allows. Symlinks are
the workloads' side: they resolve real paths and refuse the same way.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit


def checkpoint_prefix(artifact_root: str, namespace: str, name: str, uid: str) -> str:
    """One checkpoint directory per TrainingRun (by uid), shared by all its attempts."""
    return f"{artifact_root.rstrip('/')}/checkpoints/{namespace}/{name}-{uid[:8]}"


def _inside(path: str, root: str) -> bool:
    root = posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def checkpoint_refusal(checkpoint: str, prefix: str) -> str | None:
    """Why `checkpoint` is not one of this run's own, or None when it is."""
    clean = posixpath.normpath(checkpoint) if checkpoint.startswith("/") else ""
    if not clean or "\x00" in checkpoint or not _inside(clean, prefix):
        return f"checkpoint {checkpoint!r} is outside the TrainingRun's storage prefix {prefix}/"
    return None


def dataset_refusal(uri: str, roots: tuple[str, ...]) -> str | None:
    """Why a `file://` dataset URI may not be read, or None (other schemes are not paths here)."""
    try:
        parts = urlsplit(uri)
    except ValueError as err:  # e.g. an unbalanced "[" reads as a broken IPv6 host
        return f"spec.data.uri: {uri} is not a valid URI ({err})"
    if parts.scheme != "file":
        return None
    path = unquote(parts.path)
    allowed = ", ".join(f"{r.rstrip('/')}/" for r in roots) or "none configured"
    if parts.netloc or not path.startswith("/") or "\x00" in path:
        return f"spec.data.uri: {uri} needs an absolute path (file:///root/...)"
    if not any(_inside(posixpath.normpath(path), root) for root in roots):
        return f"spec.data.uri: {uri} is outside the allowed dataset roots ({allowed})"
    return None
