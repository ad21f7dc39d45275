"""Verify a signed model artifact, then load it: nothing is loaded before the signature checks.

Decides the refusal (`ArtifactRefused`, whose text is the one log line operators grep for) and
closes the gap between verifying and loading: the graph, model_config.json and the numerics probe
are read into memory once and their SHA-256 must equal the digests the signed manifest vouched for,
so a file swapped after verification is never run. A graph's external data files are read the same
way and handed to the runtime in memory, so it never opens a path the graph names itself. Which
graph is served is graph_choice's call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from tugboat_workloads.numerics_probe import (
    PROBE_FILE,
    Probe,
    ProbeError,
    cpu_features,
    parse_probe,
    top1_agreement,
)
from tugboat_workloads.sign.onnx_external import (
    OnnxFormatError,
    UnsafeLocation,
    artifact_path,
    external_locations,
)
from tugboat_workloads.verify import VerificationError, verify_artifact

from .graph_choice import FP32, GRAPH_FILES, GraphChoice, GraphVerdict, choose_graph, judge_graph
from .onnx_model import OnnxGenerator

MODEL_FILE = GRAPH_FILES[FP32]
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
    graph: GraphChoice


def load_verified_model(artifact_dir: str, public_key: str, graph: str = FP32,
                        allow_fallback: bool = False) -> LoadedModel:
    """Verify, then load `graph` if it passes the numerics probe on this CPU (else fp32 when allowed)."""
    try:
        verified = verify_artifact(artifact_dir, public_key)
    except VerificationError as err:
        raise ArtifactRefused(artifact_dir, err.reason, err.message) from err
    config = _model_config(artifact_dir, _read_vouched(artifact_dir, CONFIG_FILE, verified.files))
    probe = _probe(artifact_dir, verified.files, config)
    generators: dict[str, OnnxGenerator] = {}

    def judge(name: str) -> GraphVerdict:
        file = GRAPH_FILES[name]

        def measure() -> float:
            generators[name] = _generator(artifact_dir, file, verified.files, config)
            return top1_agreement(generators[name].logits, probe)

        if probe is None and file in verified.files:
            generators[name] = _generator(artifact_dir, file, verified.files, config)
        return judge_graph(name, file in verified.files, probe, measure, _CPU)

    choice = choose_graph(graph, allow_fallback, judge, _CPU_FEATURES,
                          probe.min_top1_agreement if probe else None)
    if isinstance(choice, GraphVerdict):
        raise ArtifactRefused(artifact_dir, choice.reason, choice.message)
    return LoadedModel(generators[choice.served], verified.manifest_digest, artifact_dir, choice)


_CPU_FEATURES = cpu_features()
_CPU = " ".join(_CPU_FEATURES)


def _generator(artifact_dir: str, file: str, digests: dict[str, str], config: dict) -> OnnxGenerator:
    model_bytes = _read_vouched(artifact_dir, file, digests)
    external = _external_data(artifact_dir, file, model_bytes, digests)
    try:
        return OnnxGenerator(model_bytes, config["vocabSize"], config["seqLen"],
                             source=str(Path(artifact_dir) / file), external_data=external)
    except Exception as err:  # onnxruntime raises its own exception types for a bad graph
        raise ArtifactRefused(artifact_dir, "LoadFailed", str(err)) from err


def _external_data(artifact_dir: str, file: str, model_bytes: bytes,
                   digests: dict[str, str]) -> dict[str, bytes]:
    """{location: vouched bytes} of every external data file the graph reads."""
    try:
        return {location: _read_vouched(artifact_dir, artifact_path(file, location), digests)
                for location in external_locations(model_bytes)}
    except UnsafeLocation as err:
        raise ArtifactRefused(artifact_dir, "UnsafeExternalData", str(err)) from err
    except OnnxFormatError as err:
        raise ArtifactRefused(artifact_dir, "LoadFailed", f"{file}: {err}") from err


def _probe(artifact_dir: str, digests: dict[str, str], config: dict) -> Probe | None:
    if PROBE_FILE not in digests:
        return None
    try:
        return parse_probe(_read_vouched(artifact_dir, PROBE_FILE, digests), config["vocabSize"],
                           config["seqLen"])
    except ProbeError as err:
        raise ArtifactRefused(artifact_dir, "MalformedProbe", str(err)) from err


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
