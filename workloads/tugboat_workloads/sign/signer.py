"""Signing an artifact directory: write manifest.json, then model.sig over every file including it.

Decides the order of the two writes (digests of the content, manifest.json, then one OpenSSF
model-signing signature whose payload lists every file, manifest.json included) and maps each way
it can fail to a CamelCase reason. It must not export or load models, and it supports only key-based
signing: Sigstore keyless signing needs an OIDC identity and network access and is out of scope.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from model_signing import signing

from tugboat_workloads.sign.artifact_hashing import (
    ArtifactLayoutError,
    KnownDigests,
    digests_of,
    hash_artifact,
    hash_files,
    list_artifact_files,
    merge_manifests,
)
from tugboat_workloads.sign.keys import SigningKeyError, check_private_key
from tugboat_workloads.sign.manifest_file import MANIFEST_FILE, SIGNATURE_FILE, manifest_bytes
from tugboat_workloads.sign.onnx_external import MissingExternalData, UnsafeLocation, external_files

# Written next to model.sig and renamed over it: a crash leaves this extra file behind, which
# verification refuses (UnexpectedFile), so a half-written signature never passes.
_PARTIAL_SIGNATURE = ".model.sig.partial"
_PARTIAL_MANIFEST = ".manifest.json.partial"


class SignReason(StrEnum):
    ARTIFACT_NOT_FOUND = "ArtifactNotFound"
    UNSUPPORTED_FILE = "UnsupportedFile"
    EMPTY_ARTIFACT = "EmptyArtifact"
    INVALID_PRIVATE_KEY = "InvalidPrivateKey"
    UNSAFE_EXTERNAL_DATA = "UnsafeExternalData"
    MISSING_EXTERNAL_DATA = "MissingExternalData"


class SignError(Exception):
    """Signing refused; `reason` is a SignReason value and the message names the file or key."""

    def __init__(self, reason: SignReason, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class SignedArtifact:
    """What was signed: manifest.json's own sha256 and the digests it lists."""

    artifact: Path
    manifest_digest: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def signature(self) -> Path:
        return self.artifact / SIGNATURE_FILE


def sign_artifact(artifact_dir: str | os.PathLike, private_key_path: str | os.PathLike) -> SignedArtifact:
    """Write `manifest.json` and `model.sig` into `artifact_dir`, replacing earlier ones."""
    root = Path(artifact_dir)
    key_path = Path(private_key_path)
    try:
        check_private_key(key_path)
    except SigningKeyError as exc:
        raise SignError(SignReason.INVALID_PRIVATE_KEY, str(exc)) from exc
    _require_content(root)

    content = hash_artifact(root, also_ignore=[MANIFEST_FILE])
    files = digests_of(content)
    _write_replacing(root / MANIFEST_FILE, root / _PARTIAL_MANIFEST, manifest_bytes(files))
    manifest_hashed = hash_files(root, [MANIFEST_FILE])
    everything = merge_manifests(content, manifest_hashed)

    partial = root / _PARTIAL_SIGNATURE
    signer = signing.Config().use_elliptic_key_signer(private_key=key_path)
    signer.set_hashing_config(KnownDigests(everything)).sign(root, partial)
    os.replace(partial, root / SIGNATURE_FILE)
    return SignedArtifact(root, digests_of(manifest_hashed)[MANIFEST_FILE], files)


def _require_content(root: Path) -> None:
    if not root.is_dir():
        raise SignError(SignReason.ARTIFACT_NOT_FOUND, f"artifact directory {root} does not exist")
    # Leftovers of an interrupted earlier signing are ours to clear, not content to sign.
    for leftover in (_PARTIAL_SIGNATURE, _PARTIAL_MANIFEST):
        (root / leftover).unlink(missing_ok=True)
    try:
        files = [f for f in list_artifact_files(root) if f != MANIFEST_FILE]
    except ArtifactLayoutError as exc:
        raise SignError(SignReason.UNSUPPORTED_FILE, str(exc)) from exc
    if not files:
        raise SignError(SignReason.EMPTY_ARTIFACT, f"artifact directory {root} has no files to sign")
    # Signing a graph whose weights live elsewhere would vouch for bytes nobody hashed.
    try:
        external_files(root, set(files), f"artifact directory {root}")
    except UnsafeLocation as exc:
        raise SignError(SignReason.UNSAFE_EXTERNAL_DATA, str(exc)) from exc
    except MissingExternalData as exc:
        raise SignError(SignReason.MISSING_EXTERNAL_DATA, str(exc)) from exc


def _write_replacing(path: Path, partial: Path, data: bytes) -> None:
    partial.write_bytes(data)
    os.replace(partial, path)
