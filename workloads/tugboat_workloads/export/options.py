"""The export CLI's flags, checked before any heavy work starts.

Decides which values each flag accepts and turns them into one frozen `ExportOptions`; a bad value
is an `ExportError(InvalidArguments)` naming the flag. Pure: no torch, no ONNX, no file access.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from tugboat_workloads.export.outcome import ExportError, ExportReason
from tugboat_workloads.numerics_probe import DEFAULT_MIN_TOP1_AGREEMENT

VARIANTS = ("fp16", "int8")
TARGETS = ("onnx", "tensorrt")
TRT_PRECISIONS = ("fp16", "fp32")
# The dynamo exporter emits opset 18 and later; older opsets would need a lossy down-conversion.
MIN_OPSET = 18


@dataclass(frozen=True)
class ExportOptions:
    checkpoint: Path
    out: Path
    checkpoint_root: Path | None = None  # the checkpoint's real path must lie under this one's
    opset: int = 18
    tolerance: float = 1e-4
    variants: tuple[str, ...] = ()
    min_top1_agreement: float = DEFAULT_MIN_TOP1_AGREEMENT
    target: str = "onnx"
    trt_precision: str = "fp16"
    result: Path | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tugboat_workloads.export",
                                     description="Export a MoE checkpoint to a verified ONNX artifact.")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory (model.pt, ...)")
    parser.add_argument("--checkpoint-root",
                        help="refuse a checkpoint whose real path is outside this directory")
    parser.add_argument("--out", required=True, type=Path, help="artifact directory to write")
    parser.add_argument("--opset", default="18", help="ONNX opset (default 18)")
    parser.add_argument("--tolerance", default="1e-4", help="max abs error torch vs ONNX fp32 (default 1e-4)")
    parser.add_argument("--variants", default="", help="comma-separated extra variants: fp16,int8")
    parser.add_argument("--min-top1-agreement", default=str(DEFAULT_MIN_TOP1_AGREEMENT),
                        help="share of top-1 choices a variant must share with torch to be published "
                             f"(default {DEFAULT_MIN_TOP1_AGREEMENT})")
    parser.add_argument("--target", default="onnx", help="onnx | tensorrt")
    parser.add_argument("--trt-precision", default="fp16", help="TensorRT engine precision: fp16 | fp32")
    parser.add_argument("--result", type=Path, help="write RESULT.json here")
    return parser


def options_from_args(args: argparse.Namespace, max_opset: int) -> ExportOptions:
    """Validate parsed flags; `max_opset` is the newest opset the installed onnx knows."""
    return ExportOptions(
        checkpoint=args.checkpoint,
        out=args.out,
        checkpoint_root=parse_checkpoint_root(args.checkpoint_root),
        opset=parse_opset(args.opset, max_opset),
        tolerance=parse_tolerance(args.tolerance),
        variants=parse_variants(args.variants),
        min_top1_agreement=parse_agreement(args.min_top1_agreement),
        target=_one_of("--target", args.target, TARGETS),
        trt_precision=_one_of("--trt-precision", args.trt_precision, TRT_PRECISIONS),
        result=args.result,
    )


def parse_checkpoint_root(text: str | None) -> Path | None:
    """Absent: no confinement (a person exporting by hand). Given, it must name a directory: an
    empty value would otherwise confine the checkpoint to the working directory by accident."""
    if text is None:
        return None
    if not text.startswith("/"):
        raise _invalid(f"--checkpoint-root: must be an absolute path, got {text!r}")
    return Path(text)


def parse_opset(text: str, max_opset: int) -> int:
    try:
        opset = int(text)
    except ValueError:
        raise _invalid(f"--opset: {text!r} is not an integer") from None
    if not MIN_OPSET <= opset <= max_opset:
        raise _invalid(f"--opset: {opset} is outside the supported range {MIN_OPSET}..{max_opset}")
    return opset


def parse_tolerance(text: str) -> float:
    try:
        tolerance = float(text)
    except ValueError:
        raise _invalid(f"--tolerance: {text!r} is not a number") from None
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise _invalid(f"--tolerance: must be a finite number > 0, got {text!r}")
    return tolerance


def parse_agreement(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _invalid(f"--min-top1-agreement: {text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise _invalid(f"--min-top1-agreement: must be in (0, 1], got {text!r}")
    return value


def parse_variants(text: str) -> tuple[str, ...]:
    """'fp16, int8' -> ('fp16', 'int8'); order kept, duplicates and empty items dropped."""
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item or item in chosen:
            continue
        if item not in VARIANTS:
            raise _invalid(f"--variants: unknown variant {item!r}; allowed: {', '.join(VARIANTS)}")
        chosen.append(item)
    return tuple(chosen)


def _one_of(flag: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _invalid(f"{flag}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _invalid(message: str) -> ExportError:
    return ExportError(ExportReason.INVALID_ARGUMENTS, message)
