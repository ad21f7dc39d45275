"""The export report: what was exported, from which checkpoint, and how close each graph is to torch.

Decides the JSON of `export_report.json` and of the `parity` section RESULT.json repeats:
`{"<variant>": {"file", "gated", "tolerance", "maxAbsError", "top1Agreement", "worst": {"shape", "output"},
"passed", "shapes": {"batch<B>_seq<S>": {"<output>": error}}}}`. The fp32 graph is gated by the
tolerance; a variant by its top-1 agreement with torch (on the parity inputs and on the numerics
probe), and one below `minTop1Agreement` is not published (`published` false, `reason` says why).
Non-finite errors are written as null (JSON has no inf).
Pure: it must not measure or write anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tugboat_workloads.export.parity import Errors, worst_error


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def variant_parity(file: str, errors: Errors, tolerance: float | None,
                   top1_agreement: float | None = None) -> dict[str, Any]:
    """One variant's parity entry; `tolerance` None means recorded only, never failing."""
    worst, shape, output = worst_error(errors)
    entry: dict[str, Any] = {
        "file": file,
        "gated": tolerance is not None,
        "tolerance": tolerance,
        "maxAbsError": _number(worst),
        "top1Agreement": top1_agreement,
        "worst": {"shape": shape, "output": output},
        "shapes": {key: {name: _number(e) for name, e in per_output.items()}
                   for key, per_output in errors.items()},
    }
    entry["passed"] = None if tolerance is None else worst <= tolerance
    return entry


def gate_variant(entry: Mapping[str, Any], probe_agreement: float, minimum: float) -> dict[str, Any]:
    """A variant's entry with its gate applied: published only if both agreements reach `minimum`."""
    parity_agreement = entry["top1Agreement"]
    low = [f"{what} top-1 agreement {value:.4f}" for what, value in
           (("parity", parity_agreement), ("probe", probe_agreement)) if value is None or value < minimum]
    published = not low
    return {**entry, "gated": True, "probeTop1Agreement": probe_agreement, "minTop1Agreement": minimum,
            "published": published, "passed": published,
            "reason": None if published else f"{' and '.join(low)} below the gate {minimum:g}"}


def parity_failure_message(entry: Mapping[str, Any]) -> str:
    worst = entry["maxAbsError"]
    shown = "non-finite" if worst is None else f"{worst:.3g}"
    return (f"{entry['file']}: max abs error {shown} at {entry['worst']['shape']} "
            f"output {entry['worst']['output']!r} exceeds tolerance {entry['tolerance']:g}")


def export_report(*, opset: int, tolerance: float, checkpoint: str, step: int, target: str,
                  parity: Mapping[str, Any], versions: Mapping[str, str],
                  interface: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "opset": opset,
        "tolerance": tolerance,
        "checkpoint": {"path": checkpoint, "step": step},
        "target": target,
        "interface": dict(interface),
        "parity": dict(parity),
        "versions": dict(versions),
        **(extra or {}),
    }
