"""Numerical parity of an ONNX graph with the torch model it came from, on held-out inputs.

Decides the shapes parity is measured at (batch 1, 4 and 16 at the full sequence length and at an
odd shorter one: a shape-derived constant frozen into the graph only shows at shapes other than the
export example, WORKLOADS.md), the held-out inputs (seeded, never the export example), and how an
error is measured (max absolute difference per output; NaN or a shape change counts as infinite).
It must not decide the tolerance (the caller passes it) nor write files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from tugboat_workloads.export.onnx_graph import INPUT_NAME, OUTPUT_NAMES, ExportView

LOGITS = "logits"

PARITY_BATCHES = (1, 4, 16)
# Distinct from the export example's seed, so parity is measured on inputs the tracer never saw.
HELD_OUT_SEED = 20_251_123
PROBE_SEED = 20_261_202
PROBE_RANDOM, PROBE_PROGRESSIONS = 16, 16

Errors = dict[str, dict[str, float]]  # shape key -> output name -> max abs error


def parity_shapes(seq_len: int) -> list[tuple[int, int]]:
    """(batch, seq) pairs: every PARITY_BATCHES size at seq_len and at about half of it (odd)."""
    half = seq_len // 2
    shorter = half if half % 2 else half + 1
    seqs = sorted({seq_len, min(shorter, seq_len)}, reverse=True)
    return [(batch, seq) for seq in seqs for batch in PARITY_BATCHES]


def shape_key(batch: int, seq: int) -> str:
    return f"batch{batch}_seq{seq}"


def held_out_inputs(shapes: Sequence[tuple[int, int]], vocab_size: int,
                    seed: int = HELD_OUT_SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {shape_key(b, s): rng.integers(0, vocab_size, size=(b, s), dtype=np.int64) for b, s in shapes}


def probe_inputs(seq_len: int, vocab_size: int, seed: int = PROBE_SEED) -> np.ndarray:
    """The numerics probe's inputs, [n, seq_len]: seeded random tokens (what parity sees) and
    arithmetic progressions (what the serving task sends)."""
    rng = np.random.default_rng(seed)
    random = rng.integers(0, vocab_size, size=(PROBE_RANDOM, seq_len), dtype=np.int64)
    starts = rng.integers(0, vocab_size, size=PROBE_PROGRESSIONS)
    strides = rng.integers(1, max(2, vocab_size // 4), size=PROBE_PROGRESSIONS)
    positions = np.arange(seq_len)
    progressions = (starts[:, None] + strides[:, None] * positions[None, :]) % vocab_size
    return np.concatenate([random, progressions.astype(np.int64)])


def torch_reference(view: ExportView, inputs: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The eager torch outputs for every input, the reference each ONNX variant is held against."""
    reference = {}
    with torch.no_grad():
        for key, tokens in inputs.items():
            outputs = view(torch.from_numpy(tokens))
            reference[key] = {name: t.numpy() for name, t in zip(OUTPUT_NAMES, outputs, strict=True)}
    return reference


def onnx_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
    options.log_severity_level = 3  # errors only: ORT's warnings would drown the Job's log
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def session_logits(session: ort.InferenceSession):
    """A function from a token batch to the session's logits (what the numerics probe runs)."""
    return lambda tokens: session.run([LOGITS], {INPUT_NAME: tokens})[0]


def measure_parity(path: Path, inputs: Mapping[str, np.ndarray],
                   reference: Mapping[str, Mapping[str, np.ndarray]]) -> tuple[Errors, float]:
    """Max abs error of the ONNX file at `path` against `reference`, per shape and output, and
    the share of token positions whose top-1 prediction agrees with torch's.

    The second number is what a reduced-precision variant is judged by in practice: int8 logits
    of a confident model can be several units off while every greedy choice stays the same."""
    session = onnx_session(path)
    errors: Errors = {}
    agree = total = 0
    for key, tokens in inputs.items():
        produced = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), {INPUT_NAME: tokens}), strict=True))
        errors[key] = {name: max_abs_error(reference[key][name], value) for name, value in produced.items()}
        expected, actual = reference[key][LOGITS], produced[LOGITS]
        if expected.shape == actual.shape:
            agree += int((expected.argmax(-1) == actual.argmax(-1)).sum())
        total += expected.shape[0] * expected.shape[1]
    return errors, agree / total if total else 1.0


def max_abs_error(expected: np.ndarray, actual: np.ndarray) -> float:
    if expected.shape != actual.shape:
        return math.inf
    if expected.size == 0:
        return 0.0
    difference = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
    return math.inf if np.isnan(difference).any() else float(difference.max())


def worst_error(errors: Errors) -> tuple[float, str, str]:
    """(error, shape key, output name) of the largest error."""
    return max(((e, key, name) for key, per_output in errors.items() for name, e in per_output.items()),
               default=(0.0, "", ""))
