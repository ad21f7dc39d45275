"""Verify a signed model artifact, then load it: nothing is loaded before the signature checks.

Decides the refusal (`ArtifactRefused`, whose text is the one log line operators grep for) and
closes the gap between verifying and loading: model.onnx and model_config.json are read into
memory once and their SHA-256 must equal the digests the signed manifest vouched for, so a file
swapped after verification is never run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tugboat_workloads.verify import VerificationError, verify_artifact

from .onnx_model import OnnxGenerator

MODEL_FILE = "model.onnx"
CONFIG_FILE = "model_config.json"


class ArtifactRefused(RuntimeError):
    """The artifact failed verification or could not be loaded after it; never serve it."""

    def __init__(self, artifact: str, reason: str, message: str):
        super().__init__(f"refusing to load artifact {artifact}: {reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class LoadedModel:
    generator: OnnxGenerator
    manifest_digest: str
    artifact: str


def load_verified_model(artifact_dir: str, public_key: str) -> LoadedModel:
    try:
        verified = verify_artifact(artifact_dir, public_key)
    except VerificationError as err:
        raise ArtifactRefused(artifact_dir, err.reason, err.message) from err
    model_bytes = _read_vouched(artifact_dir, MODEL_FILE, verified.files)
    config = _model_config(artifact_dir, _read_vouched(artifact_dir, CONFIG_FILE, verified.files))
    try:
        generator = OnnxGenerator(model_bytes, config["vocabSize"], config["seqLen"],
                                  source=str(Path(artifact_dir) / MODEL_FILE))
    except Exception as err:  # onnxruntime raises its own exception types for a bad graph
        raise ArtifactRefused(artifact_dir, "LoadFailed", str(err)) from err
    return LoadedModel(generator, verified.manifest_digest, artifact_dir)


def _read_vouched(artifact_dir: str, name: str, digests: dict[str, str]) -> bytes:
    if name not in digests:
        raise ArtifactRefused(artifact_dir, "MissingFile", f"{name} is not in the signed manifest")
    try:
        data = (Path(artifact_dir) / name).read_bytes()
    except OSError as err:
        raise ArtifactRefused(artifact_dir, "MissingFile",
                              f"{name} vanished after verification: {err.strerror}") from err
    actual = hashlib.sha256(data).hexdigest()
    if actual != digests[name]:
        raise ArtifactRefused(artifact_dir, "DigestMismatch",
                              f"{name} changed after verification ({actual} != {digests[name]})")
    return data


def _model_config(artifact_dir: str, raw: bytes) -> dict:
    try:
        config = json.loads(raw)
        vocab, seq = config["vocabSize"], config["seqLen"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ArtifactRefused(artifact_dir, "MalformedConfig",
                              f"{CONFIG_FILE} needs integer vocabSize and seqLen ({err})") from err
    if not all(isinstance(v, int) and v > 0 for v in (vocab, seq)):
        raise ArtifactRefused(artifact_dir, "MalformedConfig",
                              f"{CONFIG_FILE} vocabSize/seqLen must be positive integers")
    return config
