"""The optional reduced-precision copies of the fp32 graph: fp16 and int8 (dynamic quantisation).

Decides how each variant is produced with ONNX Runtime's own tools, which operators stay in fp32
and which int8 scheme is used. ONNX Runtime's U8S8 kernels (uint8 activations, int8 weights) sum
pairs of products into int16 with saturation on AVX2/AVX-512 CPUs without VNNI, so the same graph
answers differently by CPU; the default scheme avoids that path (measured in
tests/bench/bench_quantization.py). Their error against torch is measured and gated by the caller.
It must not touch the fp32 graph file.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from tugboat_workloads.export.outcome import ExportError, ExportReason

VARIANT_FILES = {"fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}


@dataclass(frozen=True)
class Int8Scheme:
    """quantize_dynamic's settings, recorded in the export report as they were used."""

    name: str
    weight_type: str       # "QInt8" (U8S8 kernels) or "QUInt8" (U8U8 kernels)
    reduce_range: bool     # 7-bit weights: the pairwise int16 sum cannot saturate
    per_channel: bool

    def to_report(self) -> dict:
        return {"method": "quantize_dynamic", **asdict(self)}


INT8_SCHEMES = {s.name: s for s in (
    # What ONNX Runtime does by default; saturates on AVX2 without VNNI.
    Int8Scheme("u8s8", "QInt8", reduce_range=False, per_channel=False),
    Int8Scheme("u8s8-reduce-range", "QInt8", reduce_range=True, per_channel=False),
    Int8Scheme("u8s8-per-channel-reduce-range", "QInt8", reduce_range=True, per_channel=True),
    Int8Scheme("u8u8", "QUInt8", reduce_range=False, per_channel=False),
)}
# U8U8 never takes the saturating U8S8 path, so it answers alike on every CPU, and it kept the
# highest agreement on the trained example (bench_quantization.py: 0.989 top-1 on parity inputs and
# probe, on VNNI and AVX2-only CPUs alike; u8s8 fell from 0.975 to 0.827 on the tiny model without VNNI).
DEFAULT_INT8_SCHEME = "u8u8"

# ONNX Runtime's CPU kernel has no fp16 ScatterND with reduction='add' (the MoE's index_add); the
# default list already keeps TopK (expert choice), CumSum and Range in fp32.
_FP16_KEEP_FP32 = [*DEFAULT_OP_BLOCK_LIST, "ScatterND"]


def variant_settings(name: str, int8_scheme: str = DEFAULT_INT8_SCHEME) -> dict:
    """How variant `name` is produced, for the export report."""
    if name == "fp16":
        return {"method": "convert_float_to_float16", "keepIoTypes": True, "fp32Ops": sorted(_FP16_KEEP_FP32)}
    return INT8_SCHEMES[int8_scheme].to_report()


def build_variant(name: str, fp32_path: Path, out_dir: Path, int8_scheme: str = DEFAULT_INT8_SCHEME,
                  out_name: str | None = None) -> Path:
    """Write variant `name` of `fp32_path` into `out_dir`; raise VariantFailed naming the variant."""
    out_path = out_dir / (out_name or VARIANT_FILES[name])
    try:
        if name == "fp16":
            _to_fp16(fp32_path, out_path)
        else:
            _to_int8(fp32_path, out_path, INT8_SCHEMES[int8_scheme])
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


def _to_int8(fp32_path: Path, out_path: Path, scheme: Int8Scheme) -> None:
    with tempfile.TemporaryDirectory(prefix="tugboat-int8-") as scratch, _quiet_root_logger():
        # Shape inference first, as ORT recommends: without it MatMuls with symbolic shapes stay fp32.
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_dynamic(str(prepared), str(out_path), weight_type=QuantType[scheme.weight_type],
                         reduce_range=scheme.reduce_range, per_channel=scheme.per_channel)


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
