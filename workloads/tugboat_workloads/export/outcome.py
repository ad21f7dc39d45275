"""How an export ends: the CamelCase failure reasons and the RESULT.json the operator reads.

Decides the shape of RESULT.json (`{"state": "Succeeded", "artifact", "files", "parity", "opset",
"variants", "target"}` or `{"state": "Failed", "reason", "message", ...details}`). Pure: it must not
touch files, torch or ONNX.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ExportReason(StrEnum):
    INVALID_ARGUMENTS = "InvalidArguments"
    INVALID_CHECKPOINT = "InvalidCheckpoint"
    UNTRUSTED_CHECKPOINT = "UntrustedCheckpoint"
    OUTPUT_NOT_EMPTY = "OutputNotEmpty"
    EXPORT_FAILED = "ExportFailed"
    ONNX_CHECK_FAILED = "OnnxCheckFailed"
    PARITY_EXCEEDED = "ParityExceeded"
    VARIANT_FAILED = "VariantFailed"
    TENSORRT_UNAVAILABLE = "TensorRTUnavailable"
    TENSORRT_BUILD_FAILED = "TensorRTBuildFailed"


class ExportError(Exception):
    """The export stopped; `details` are extra RESULT.json keys (e.g. the parity measured so far)."""

    def __init__(self, reason: ExportReason, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.details = dict(details or {})


def failed_result(error: ExportError) -> dict[str, Any]:
    return {**error.details, "state": "Failed", "reason": str(error.reason), "message": error.message}


def succeeded_result(*, artifact: str, files: list[str], parity: Mapping[str, Any], opset: int,
                     variants: list[str], target: str,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        **(extra or {}),
        "state": "Succeeded",
        "artifact": artifact,
        "files": sorted(files),
        "parity": dict(parity),
        "opset": opset,
        "variants": list(variants),
        "target": target,
    }
