"""How an artifact directory is listed and hashed, identically for signing and for verification.

Decides which files belong to an artifact (every regular file except the signature; symlinks and
special files are refused) and the one model-signing hashing configuration both sides use
(SHA-256 per whole file, streamed in chunks, no paths ignored but `model.sig`). It also lets one
hashing pass serve twice: `KnownDigests` hands model-signing digests already computed in this
process, so signing and verifying read each byte once. It must not decide whether an artifact is
trustworthy: that is `tugboat_workloads.verify`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

from model_signing import hashing
from model_signing import manifest as ms_manifest

from tugboat_workloads.sign.manifest_file import ALGORITHM, SIGNATURE_FILE

# 8 MiB reads: large enough that the per-call overhead vanishes next to SHA-256 itself, small
# enough that a multi-GB weight file never sits in memory.
CHUNK_BYTES = 8 * 1024 * 1024


class ArtifactLayoutError(ValueError):
    """The artifact directory holds something that cannot be signed; `path` names it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def list_artifact_files(root: Path) -> list[str]:
    """Relative POSIX paths of every regular file under `root`, sorted, without the signature."""
    if not root.is_dir():
        raise ArtifactLayoutError(str(root), f"artifact directory {root} is missing or not a directory")
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in chain(dirnames, filenames):
            full = Path(dirpath, name)
            relative = full.relative_to(root).as_posix()
            mode = full.lstat().st_mode
            # A symlink could make the signed bytes depend on files outside the artifact.
            if stat.S_ISLNK(mode):
                raise ArtifactLayoutError(relative, f"artifact file {relative!r} is a symlink; refusing it")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise ArtifactLayoutError(relative, f"artifact entry {relative!r} is not a regular file")
            if stat.S_ISREG(mode) and relative != SIGNATURE_FILE:
                found.append(relative)
    return sorted(found)


def artifact_hashing_config(also_ignore: Iterable[str] = ()) -> hashing.Config:
    """The model-signing hashing configuration shared by signer and verifier."""
    config = hashing.Config().use_file_serialization(
        hashing_algorithm=ALGORITHM, chunk_size=CHUNK_BYTES, allow_symlinks=False)
    # Git paths are not ignored: every byte in the artifact directory is covered by the signature.
    return config.set_ignored_paths(paths=[SIGNATURE_FILE, *also_ignore], ignore_git_paths=False)


def hash_artifact(root: Path, also_ignore: Iterable[str] = ()) -> ms_manifest.Manifest:
    """Hash every artifact file under `root` once (files in parallel threads)."""
    return artifact_hashing_config(also_ignore).hash(root)


def hash_files(root: Path, relative_paths: Iterable[str]) -> ms_manifest.Manifest:
    """Hash only the named files, with the shared configuration's recorded parameters."""
    return artifact_hashing_config().hash(root, files_to_hash=[root / p for p in relative_paths])


def digests_of(hashed: ms_manifest.Manifest) -> dict[str, str]:
    """{relative path: sha256 hex} of a model-signing manifest built with file serialization."""
    digests: dict[str, str] = {}
    for descriptor in hashed.resource_descriptors():
        if descriptor.digest.algorithm != ALGORITHM:
            raise ValueError(f"{descriptor.identifier}: expected a {ALGORITHM} digest, "
                             f"got {descriptor.digest.algorithm}")
        digests[descriptor.identifier] = descriptor.digest.digest_hex
    return digests


def merge_manifests(base: ms_manifest.Manifest, *extra: ms_manifest.Manifest) -> ms_manifest.Manifest:
    """One manifest holding the items of all; recorded parameters come from the last one.

    The parameters travel inside the signature, and a plain `model_signing` verifier re-hashes
    with them, so they must be those of `artifact_hashing_config()` (ignoring only model.sig).
    """
    parameters = (extra[-1] if extra else base).serialization_type
    serialization = ms_manifest.SerializationType.from_args(parameters)
    items = [serialization.new_item(d.identifier, d.digest)
             for m in (base, *extra) for d in m.resource_descriptors()]
    return ms_manifest.Manifest(base.model_name, items, serialization)


class KnownDigests(hashing.Config):
    """A hashing configuration that returns a manifest hashed earlier instead of reading files again.

    model-signing's signer and verifier call `hash()` on their hashing configuration; the
    verifier calls it only after the signature's cryptography checked out, which `used` records.
    """

    def __init__(self, hashed: ms_manifest.Manifest):
        super().__init__()
        self._hashed = hashed
        self.used = False

    def hash(self, model_path, *, files_to_hash=None) -> ms_manifest.Manifest:  # noqa: ARG002
        self.used = True
        return self._hashed
