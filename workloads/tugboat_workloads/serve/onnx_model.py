"""Greedy generation with an ONNX MoE model through ONNX Runtime.

Decides how a completion is produced (greedy, context cut to the model's seqLen), the model's
confidence (mean max softmax probability of the generated tokens), the router health of the
last forward pass (worst layer's max/mean expert load; mean gate entropy over layers) and the
router counts of the whole generation: every forward pass re-routes its whole window, so each
pass adds its `expert_load` fractions times the window's positions per (layer, expert), and its
mean gate entropy times the positions per layer. Must not verify signatures or read files other
than what it is handed: the artifact loader does that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

INPUT = "tokens"
OUTPUTS = ("logits", "expert_load", "router_entropy")


@dataclass(frozen=True)
class RouterCounts:
    """Router statistics summed over every forward pass of one generation."""

    expert_tokens: np.ndarray  # [layers, experts]: expert_load x window positions, summed
    entropy_nats: np.ndarray  # [layers]: mean gate entropy x window positions, summed


@dataclass(frozen=True)
class Generation:
    tokens: tuple[int, ...]
    confidence: float
    imbalance: float
    entropy: float
    router: RouterCounts


class OnnxGenerator:
    """One ONNX Runtime session; `generate` is safe to call from several threads."""

    def __init__(self, model_bytes: bytes, vocab_size: int, seq_len: int, source: str,
                 external_data: Mapping[str, bytes] | None = None):
        options = ort.SessionOptions()
        # One thread per inference: the pod's CPU limit is small and requests run side by side.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        if external_data:
            # By location, as the graph names them: the runtime reads these bytes, not the disk.
            names = list(external_data)
            options.add_external_initializers_from_files_in_memory(
                names, [external_data[n] for n in names], [len(external_data[n]) for n in names])
        self._session = ort.InferenceSession(model_bytes, sess_options=options,
                                             providers=["CPUExecutionProvider"])
        _check_signature(self._session, source)
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.router_shape = _router_shape(self._session)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """Logits for a token batch [batch, seq]: what the numerics probe checks at startup."""
        return self._session.run([OUTPUTS[0]], {INPUT: tokens})[0]

    def generate(self, prompt_tokens: list[int], max_tokens: int) -> Generation:
        context = list(prompt_tokens)
        produced: list[int] = []
        top_probs: list[float] = []
        expert_load = entropy = None
        expert_tokens = entropy_nats = 0.0
        for _ in range(max_tokens):
            window = np.asarray([context[-self.seq_len:]], dtype=np.int64)
            logits, expert_load, entropy = self._session.run(list(OUTPUTS), {INPUT: window})
            positions = window.shape[1]
            expert_tokens = expert_tokens + expert_load.astype(np.float64) * positions
            entropy_nats = entropy_nats + entropy.astype(np.float64) * positions
            probs = _softmax(logits[0, -1].astype(np.float64))
            token = int(np.argmax(probs))
            produced.append(token)
            top_probs.append(float(probs[token]))
            context.append(token)
        return Generation(tokens=tuple(produced), confidence=float(np.mean(top_probs)),
                          imbalance=load_imbalance(expert_load), entropy=float(np.mean(entropy)),
                          router=RouterCounts(expert_tokens, entropy_nats))


def load_imbalance(expert_load: np.ndarray) -> float:
    """Max over layers of max/mean expert load; 0 when a layer routed nothing."""
    load = np.asarray(expert_load, dtype=np.float64)
    means = load.mean(axis=-1)
    ratios = np.where(means > 0, load.max(axis=-1) / np.where(means > 0, means, 1.0), 0.0)
    return float(ratios.max())


def _router_shape(session: ort.InferenceSession) -> tuple[int, int] | None:
    """(layers, experts) when the graph declares them as fixed sizes, as the exporter does."""
    shape = next(o.shape for o in session.get_outputs() if o.name == "expert_load")
    return (shape[0], shape[1]) if len(shape) == 2 and all(isinstance(d, int) for d in shape) else None


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _check_signature(session: ort.InferenceSession, source: str) -> None:
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    missing = ([INPUT] if INPUT not in inputs else []) + [o for o in OUTPUTS if o not in outputs]
    if missing:
        raise ValueError(f"{source}: model lacks {', '.join(missing)} "
                         f"(inputs {sorted(inputs)}, outputs {sorted(outputs)})")
