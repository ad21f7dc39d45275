"""Verification of a signed artifact before anyone loads or rolls it out.

Decides whether an artifact directory is exactly what its signer signed: manifest.json parses,
every file's SHA-256 matches it with no file missing or extra, every external data file an ONNX
graph reads is one of those files (a location with `..` or an absolute one is refused), and model.sig (OpenSSF
model-signing, elliptic key) verifies with the given public key over all files including
manifest.json. Each refusal is a `VerificationError` whose reason is one fixed CamelCase value and
whose message names the file or the key. It must stay torch-free and onnx-free (only hashlib via
model-signing): the operator and the serving runtime import it.

CLI: `python -m tugboat_workloads.verify DIR --public-key PUB.pem` (exit 0 verified, 1 refused).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from model_signing import verifying

from tugboat_workloads.sign.artifact_hashing import (
    ArtifactLayoutError,
    KnownDigests,
    digests_of,
    hash_artifact,
    list_artifact_files,
)
from tugboat_workloads.sign.manifest_file import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    ManifestFormatError,
    VerificationReason,
    compare_digests,
    parse_manifest,
)
from tugboat_workloads.sign.onnx_external import OnnxFormatError, UnsafeLocation, external_files

__all__ = ["VerificationError", "VerificationReason", "VerifiedArtifact", "verify_artifact"]


class VerificationError(Exception):
    """The artifact was refused; `reason` is a VerificationReason value, `message` names the file or key."""

    def __init__(self, reason: VerificationReason, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class VerifiedArtifact:
    """A verified artifact: manifest.json's sha256 and the {path: sha256} it lists (all checked)."""

    manifest_digest: str
    files: dict[str, str] = field(default_factory=dict)


def verify_artifact(artifact_dir: str | os.PathLike,
                    public_key_pem_path: str | os.PathLike) -> VerifiedArtifact:
    """Verify `artifact_dir` against `public_key_pem_path`; raise VerificationError on any doubt."""
    root = Path(artifact_dir)
    public_key = Path(public_key_pem_path)
    listed = _read_manifest(root)
    _require_only_regular_files(root)
    try:
        hashed = hash_artifact(root)  # one read of every byte; reused for the signature below
    except OSError as exc:  # e.g. a file removed or made unreadable while we hash
        raise VerificationError(VerificationReason.MISSING_FILE,
                                f"artifact file {exc.filename} cannot be read: {exc.strerror}") from exc
    found = digests_of(hashed)
    manifest_digest = found.pop(MANIFEST_FILE)
    discrepancies = compare_digests(listed, found)
    if discrepancies:
        first = discrepancies[0]
        more = f" (and {len(discrepancies) - 1} more)" if len(discrepancies) > 1 else ""
        raise VerificationError(first.reason, first.message + more)
    _check_external_data(root, listed)
    _check_signature(root, public_key, KnownDigests(hashed))
    return VerifiedArtifact(manifest_digest, listed)


def _read_manifest(root: Path) -> dict[str, str]:
    if not root.is_dir():
        raise VerificationError(VerificationReason.MISSING_FILE,
                                f"artifact directory {root} does not exist or is not a directory")
    if not (root / SIGNATURE_FILE).is_file():
        raise VerificationError(VerificationReason.MISSING_SIGNATURE,
                                f"{SIGNATURE_FILE} is missing from artifact {root}")
    manifest_path = root / MANIFEST_FILE
    if not manifest_path.is_file():
        raise VerificationError(VerificationReason.MISSING_FILE,
                                f"{MANIFEST_FILE} is missing from artifact {root}")
    try:
        return parse_manifest(manifest_path.read_bytes())
    except ManifestFormatError as exc:
        raise VerificationError(VerificationReason.MALFORMED_MANIFEST, f"{root}: {exc}") from exc


def _check_external_data(root: Path, listed: dict[str, str]) -> None:
    """A graph's external data is read by the runtime, not by us: it must be signed bytes too."""
    try:
        external_files(root, listed, MANIFEST_FILE)
    except UnsafeLocation as exc:
        raise VerificationError(VerificationReason.UNSAFE_EXTERNAL_DATA, str(exc)) from exc
    except OnnxFormatError as exc:  # MissingExternalData: named by the graph, absent from the manifest
        raise VerificationError(VerificationReason.MISSING_FILE, str(exc)) from exc
    except OSError as exc:
        raise VerificationError(VerificationReason.MISSING_FILE,
                                f"artifact file {exc.filename} cannot be read: {exc.strerror}") from exc


def _require_only_regular_files(root: Path) -> None:
    try:
        list_artifact_files(root)
    except ArtifactLayoutError as exc:
        raise VerificationError(VerificationReason.UNEXPECTED_FILE, str(exc)) from exc


def _check_signature(root: Path, public_key: Path, digests: KnownDigests) -> None:
    """Check model.sig's cryptography with `public_key`, then its signed digests against the files.

    model-signing raises the same exception types for both failures; it hashes (here: asks
    `digests`) only after the cryptography passed, so `digests.used` tells them apart.
    """
    try:
        config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    except (OSError, ValueError, TypeError) as exc:
        raise VerificationError(VerificationReason.BAD_SIGNATURE,
                                f"public key {public_key} cannot be used: {exc}") from exc
    try:
        config.set_hashing_config(digests).verify(root, root / SIGNATURE_FILE)
    except Exception as exc:  # noqa: BLE001 - any failure inside the library means "not verified"
        if not digests.used:
            raise VerificationError(VerificationReason.BAD_SIGNATURE,
                                    f"{SIGNATURE_FILE} does not verify with public key {public_key}: "
                                    f"{type(exc).__name__}: {exc}") from exc
        # The files match manifest.json (checked before), so manifest.json itself was rewritten.
        raise VerificationError(VerificationReason.DIGEST_MISMATCH,
                                f"the files of {root} differ from the digests signed in {SIGNATURE_FILE} "
                                f"(was {MANIFEST_FILE} rewritten?): {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tugboat_workloads.verify",
                                     description="Verify a signed Tugboat model artifact.")
    parser.add_argument("artifact", type=Path, help="artifact directory")
    parser.add_argument("--public-key", required=True, type=Path, help="EC public key, PEM")
    args = parser.parse_args(argv)
    try:
        verified = verify_artifact(args.artifact, args.public_key)
    except VerificationError as exc:
        print(f"REFUSED {args.artifact}: {exc}", file=sys.stderr)
        return 1
    print(f"VERIFIED {args.artifact}: {len(verified.files)} files, "
          f"manifest sha256 {verified.manifest_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
