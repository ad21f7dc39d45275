"""The `manifest.json` of a signed artifact: its exact bytes, its parsing, its comparison with a directory.

Decides the file's shape (`{"algorithm": "sha256", "files": {"relative/posix/path": "<sha256 hex>"}}`),
which paths it may name, and which discrepancy between listed and found files is reported first.
It must not read or hash files: callers pass digests in, so every rule here is testable without I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "model.sig"
ALGORITHM = "sha256"
# The manifest cannot list its own digest, and the signature is written after it.
RESERVED_FILES = frozenset({MANIFEST_FILE, SIGNATURE_FILE})

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class VerificationReason(StrEnum):
    """Why an artifact was refused; the values are the wire reasons of `VerificationError`."""

    DIGEST_MISMATCH = "DigestMismatch"
    UNEXPECTED_FILE = "UnexpectedFile"
    MISSING_FILE = "MissingFile"
    BAD_SIGNATURE = "BadSignature"
    MISSING_SIGNATURE = "MissingSignature"
    MALFORMED_MANIFEST = "MalformedManifest"
    UNSAFE_EXTERNAL_DATA = "UnsafeExternalData"


class ManifestFormatError(ValueError):
    """manifest.json (or digests about to be written to it) break the format; the message says where."""


@dataclass(frozen=True)
class Discrepancy:
    """One difference between the files manifest.json lists and the files found on disk."""

    reason: VerificationReason
    path: str
    message: str


def check_relative_path(path: object) -> str:
    """Return `path` if it is a plain relative POSIX path inside the artifact, else raise."""
    if not isinstance(path, str) or not path:
        raise ManifestFormatError(f"{MANIFEST_FILE}: file path {path!r} is not a non-empty string")
    parts = path.split("/")
    # Absolute paths, '..' and empty segments could point outside the artifact or alias a file.
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise ManifestFormatError(f"{MANIFEST_FILE}: file path {path!r} is not a clean relative path")
    if path in RESERVED_FILES:
        raise ManifestFormatError(f"{MANIFEST_FILE}: file path {path!r} is reserved and cannot be listed")
    return path


def _check_digest(path: str, digest: object) -> str:
    if not isinstance(digest, str) or not _HEX_SHA256.fullmatch(digest):
        raise ManifestFormatError(
            f"{MANIFEST_FILE}: files[{path!r}] = {digest!r} is not a lowercase 64-digit sha256 hex digest")
    return digest


def manifest_bytes(digests: Mapping[str, str]) -> bytes:
    """The canonical bytes of manifest.json for `digests` (sorted keys, so re-signing is reproducible)."""
    if not digests:
        raise ManifestFormatError(f"{MANIFEST_FILE}: an artifact must contain at least one file")
    files = {check_relative_path(p): _check_digest(p, d) for p, d in sorted(digests.items())}
    body = {"algorithm": ALGORITHM, "files": files}
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_manifest(raw: bytes) -> dict[str, str]:
    """Parse manifest.json into {relative path: sha256 hex}; raise ManifestFormatError naming the field."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestFormatError(f"{MANIFEST_FILE} is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ManifestFormatError(f"{MANIFEST_FILE}: top level must be an object, got {type(body).__name__}")
    unknown = sorted(set(body) - {"algorithm", "files"})
    if unknown:
        raise ManifestFormatError(f"{MANIFEST_FILE}: unknown keys {unknown}")
    if body.get("algorithm") != ALGORITHM:
        raise ManifestFormatError(
            f"{MANIFEST_FILE}: algorithm must be {ALGORITHM!r}, got {body.get('algorithm')!r}")
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise ManifestFormatError(f"{MANIFEST_FILE}: files must be a non-empty object of path -> digest")
    return {check_relative_path(p): _check_digest(p, d) for p, d in files.items()}


def compare_digests(listed: Mapping[str, str], found: Mapping[str, str]) -> list[Discrepancy]:
    """Every difference between manifest.json (`listed`) and the directory (`found`), most serious first.

    Changed content comes first (tampering), then missing files, then extra ones; within a kind,
    paths are sorted so the reported discrepancy is deterministic.
    """
    changed = [
        Discrepancy(VerificationReason.DIGEST_MISMATCH, p,
                    f"file {p!r} has sha256 {found[p]} but {MANIFEST_FILE} lists {listed[p]}")
        for p in sorted(set(listed) & set(found)) if listed[p] != found[p]
    ]
    missing = [
        Discrepancy(VerificationReason.MISSING_FILE, p,
                    f"file {p!r} is listed in {MANIFEST_FILE} but missing from the artifact")
        for p in sorted(set(listed) - set(found))
    ]
    extra = [
        Discrepancy(VerificationReason.UNEXPECTED_FILE, p,
                    f"file {p!r} is in the artifact but not listed in {MANIFEST_FILE}")
        for p in sorted(set(found) - set(listed))
    ]
    return changed + missing + extra
