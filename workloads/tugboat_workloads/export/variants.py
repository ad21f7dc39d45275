"""The optional reduced-precision copies of the fp32 graph: fp16 and int8 (dynamic quantisation).

Decides how each variant is produced with ONNX Runtime's own tools and which operators stay in
fp32. Their error against torch is measured by the caller and recorded, never held to the fp32
tolerance: an int8 router may pick different experts for borderline tokens. It must not touch the
fp32 graph file.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from tugboat_workloads.export.outcome import ExportError, ExportReason

VARIANT_FILES = {"fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}

# ONNX Runtime's CPU kernel has no fp16 ScatterND with reduction='add' (the MoE's index_add); the
# default list already keeps TopK (expert choice), CumSum and Range in fp32.
_FP16_KEEP_FP32 = [*DEFAULT_OP_BLOCK_LIST, "ScatterND"]


def build_variant(name: str, fp32_path: Path, out_dir: Path) -> Path:
    """Write variant `name` of `fp32_path` into `out_dir`; raise VariantFailed naming the variant."""
    out_path = out_dir / VARIANT_FILES[name]
    try:
        if name == "fp16":
            _to_fp16(fp32_path, out_path)
        else:
            _to_int8(fp32_path, out_path)
        onnx.checker.check_model(str(out_path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - converters raise many unrelated types
        raise ExportError(ExportReason.VARIANT_FAILED,
                          f"{name} variant ({out_path.name}) failed: {type(exc).__name__}: {exc}") from exc
    return out_path


def _to_fp16(fp32_path: Path, out_path: Path) -> None:
    model = onnx.load(str(fp32_path))
    # keep_io_types: the serving runtime feeds int64 tokens and reads fp32 whatever the variant.
    converted = OnnxModel(convert_float_to_float16(model, keep_io_types=True, op_block_list=_FP16_KEEP_FP32))
    # The converter appends its Cast nodes at the end of the node list; onnx.checker requires order.
    converted.topological_sort(is_deterministic=True)
    onnx.save(converted.model, str(out_path))


def _to_int8(fp32_path: Path, out_path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="tugboat-int8-") as scratch, _quiet_root_logger():
        # Shape inference first, as ORT recommends: without it MatMuls with symbolic shapes stay fp32.
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_dynamic(str(prepared), str(out_path), weight_type=QuantType.QInt8)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    # The quantiser logs a root-logger WARNING for every int64 tensor it rightly skips (dozens).
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
