"""A TensorRT engine built from the verified ONNX graph, for GPU serving.

Decides the engine's optimisation profile (token shapes it accepts), its precision flag and the
file name, and reports `TensorRTUnavailable` when the node lacks an NVIDIA GPU or the `tensorrt`
package. TensorRT is imported lazily, only here: it ships in the GPU export image and cannot be
installed from PyPI (WORKLOADS.md). It must not export or check the ONNX graph (done before).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tugboat_workloads.export.onnx_graph import INPUT_NAME
from tugboat_workloads.export.outcome import ExportError, ExportReason

ENGINE_FILE = "model.engine"
# Serving batches are small; 64 leaves headroom without a huge activation workspace.
OPT_BATCH = 8
MAX_BATCH = 64
WORKSPACE_BYTES = 1 << 30


@dataclass(frozen=True)
class TensorRTProfile:
    """min/opt/max (batch, seq) of the `tokens` input the engine is built for."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]


def tensorrt_profile(seq_len: int) -> TensorRTProfile:
    return TensorRTProfile(min=(1, 1), opt=(OPT_BATCH, seq_len), max=(MAX_BATCH, seq_len))


def tensorrt_plan(seq_len: int, precision: str) -> dict[str, Any]:
    """What the engine build will be, recorded in the report whether or not it can run here."""
    return {"engine": ENGINE_FILE, "precision": precision, "profile": asdict(tensorrt_profile(seq_len)),
            "input": INPUT_NAME}


def build_tensorrt_engine(onnx_path: Path, engine_path: Path, precision: str, seq_len: int) -> None:
    trt = _tensorrt_on_a_gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(ExportReason.TENSORRT_BUILD_FAILED,
                          f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = tensorrt_profile(_seq_len_checked(seq_len))
    optimisation = builder.create_optimization_profile()
    optimisation.set_shape(INPUT_NAME, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(optimisation)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(ExportReason.TENSORRT_BUILD_FAILED,
                          f"TensorRT could not build an engine from {onnx_path.name} (see its log above)")
    engine_path.write_bytes(bytes(serialized))


def _seq_len_checked(seq_len: int) -> int:
    if seq_len < 1:
        raise ExportError(ExportReason.TENSORRT_BUILD_FAILED, f"seqLen must be >= 1, got {seq_len}")
    return seq_len


def _tensorrt_on_a_gpu() -> ModuleType:
    """The tensorrt module, or TensorRTUnavailable saying which of GPU and package is missing."""
    import torch  # already loaded by the export; used only to ask CUDA for a device

    missing = []
    if not torch.cuda.is_available():
        missing.append("an NVIDIA GPU (torch.cuda.is_available() is False on this node)")
    try:
        import tensorrt as trt  # noqa: PLC0415 - lazy on purpose: only GPU export images ship it
    except ImportError as exc:
        missing.append(f"the tensorrt Python package ({exc})")
        trt = None
    if missing:
        raise ExportError(ExportReason.TENSORRT_UNAVAILABLE,
                          "a TensorRT engine build needs " + " and ".join(missing)
                          + "; run the tensorrt target on a GPU node pool with a TensorRT image")
    return trt
