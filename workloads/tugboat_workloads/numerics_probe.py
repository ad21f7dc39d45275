"""The numerics probe: a few inputs with torch's top-1 answers, shipped inside the signed artifact.

Decides the probe file's JSON (`numerics_probe.json`: `{"version": 1, "seqLen", "vocabSize",
"minTop1Agreement", "inputs": [[token, ...], ...], "top1": [[token, ...], ...]}`, one top-1 token per
input position), how agreement is counted (share of positions whose argmax equals torch's), and
which CPU features a report names. A graph's numbers depend on the CPU that runs it (int8 kernels
saturate on some instruction sets), so the serving runtime re-checks them where it runs.
Torch-free: the export writes the file, the serving runtime reads it; it must not run models itself
(callers pass a function from token batches to logits).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROBE_FILE = "numerics_probe.json"
PROBE_VERSION = 1
DEFAULT_MIN_TOP1_AGREEMENT = 0.97
# The instruction sets int8 and fp16 kernels dispatch on; named in every probe verdict. Keys are
# numpy's CPUID names (what this process really gets, inside a VM or an emulator too), values the
# Linux /proc/cpuinfo flag used where numpy cannot say.
_CPU_FLAGS = {"AVX2": "avx2", "FMA3": "fma", "F16C": "f16c", "AVX512F": "avx512f", "AVX512BW": "avx512bw",
              "AVX512VNNI": "avx512_vnni", "AVX512BF16": "avx512_bf16", "AVX512FP16": "avx512_fp16"}
_VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")

Logits = Callable[[np.ndarray], np.ndarray]  # int64 [batch, seq] -> float [batch, seq, vocab]


class ProbeError(ValueError):
    """The probe file is missing a field or does not fit the model."""


@dataclass(frozen=True)
class Probe:
    inputs: np.ndarray   # int64 [n, seq]
    top1: np.ndarray     # int64 [n, seq]
    min_top1_agreement: float
    vocab_size: int

    def to_json(self) -> str:
        return json.dumps({
            "version": PROBE_VERSION, "seqLen": int(self.inputs.shape[1]), "vocabSize": self.vocab_size,
            "minTop1Agreement": self.min_top1_agreement,
            "inputs": self.inputs.tolist(), "top1": self.top1.tolist()}, separators=(",", ":")) + "\n"


def make_probe(inputs: np.ndarray, reference_logits: np.ndarray, vocab_size: int,
               min_top1_agreement: float) -> Probe:
    return Probe(np.asarray(inputs, dtype=np.int64), np.asarray(reference_logits).argmax(-1).astype(np.int64),
                 float(min_top1_agreement), int(vocab_size))


def parse_probe(raw: bytes | str, vocab_size: int, seq_len: int) -> Probe:
    try:
        data = json.loads(raw)
        if data.get("version") != PROBE_VERSION:
            raise ProbeError(f"{PROBE_FILE}: version {data.get('version')!r}, expected {PROBE_VERSION}")
        inputs = np.asarray(data["inputs"], dtype=np.int64)
        top1 = np.asarray(data["top1"], dtype=np.int64)
        gate = float(data["minTop1Agreement"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, ProbeError):
            raise
        raise ProbeError(f"{PROBE_FILE} is malformed: {type(err).__name__}: {err}") from err
    if inputs.ndim != 2 or inputs.shape != top1.shape or inputs.size == 0:
        raise ProbeError(f"{PROBE_FILE}: inputs {inputs.shape} and top1 {top1.shape} must be equal, "
                         "non-empty [n, seq] arrays")
    if inputs.shape[1] > seq_len or inputs.min() < 0 or max(inputs.max(), top1.max()) >= vocab_size:
        raise ProbeError(f"{PROBE_FILE} does not fit the model (seqLen {seq_len}, vocabSize {vocab_size})")
    if not 0.0 < gate <= 1.0:
        raise ProbeError(f"{PROBE_FILE}: minTop1Agreement {gate} must be in (0, 1]")
    return Probe(inputs, top1, gate, vocab_size)


def load_probe(path: Path, vocab_size: int, seq_len: int) -> Probe:
    return parse_probe(path.read_bytes(), vocab_size, seq_len)


def top1_agreement(logits: Logits, probe: Probe, batch: int = 16) -> float:
    """Share of probe positions whose argmax under `logits` equals the recorded torch top-1."""
    agree = 0
    for start in range(0, len(probe.inputs), batch):
        chunk = probe.inputs[start:start + batch]
        produced = np.asarray(logits(chunk))
        if produced.shape[:2] != chunk.shape:
            return 0.0
        agree += int((produced.argmax(-1) == probe.top1[start:start + batch]).sum())
    return agree / probe.top1.size


def cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The int8/fp16-relevant instruction sets this process can use: numpy's CPUID view, or the
    `flags` line of `cpuinfo` (/proc/cpuinfo) when given or when numpy has none."""
    if cpuinfo is None:
        detected = _numpy_features()
        if detected is not None:
            return [flag for key, flag in _CPU_FLAGS.items() if detected.get(key)] or [_machine()]
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return [_machine()]
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    wanted = [*_CPU_FLAGS.values(), "avx_vnni", "amx_int8"]
    return [f for f in wanted if f in flags] or [_machine()]


def _numpy_features() -> dict[str, bool] | None:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        return None
    return dict(__cpu_features__) if __cpu_features__ else None


def _machine() -> str:
    return platform.machine() or "unknown"


def describe_cpu(features: Sequence[str]) -> str:
    """'avx2 avx512f avx512_vnni' -> a short phrase that also says when no int8 dot-product unit exists."""
    has_vnni = any(f in features for f in _VNNI)
    return f"{' '.join(features)}{'' if has_vnni else ' (no VNNI)'}"
