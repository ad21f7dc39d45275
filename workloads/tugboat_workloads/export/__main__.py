"""CLI: `python -m tugboat_workloads.export --checkpoint DIR --out DIR [--opset 18] [--tolerance 1e-4]
[--variants fp16,int8] [--target onnx|tensorrt] [--trt-precision fp16] [--result RESULT.json]`.

Translates flags into one `run_export` call and its outcome into RESULT.json, one summary line and
the exit code (0 Succeeded, 1 Failed with a CamelCase reason). It must not decide anything itself.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

from tugboat_workloads.export.options import build_parser, options_from_args
from tugboat_workloads.export.outcome import ExportError, ExportReason, failed_result


def _write_result(path: Path | None, result: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Our own progress at INFO; the exporter's libraries log hundreds of INFO lines per graph.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tugboat_workloads").setLevel(logging.INFO)
    try:
        import onnx  # the newest opset this onnx knows bounds --opset

        options = options_from_args(args, onnx.defs.onnx_opset_version())
        from tugboat_workloads.export.pipeline import run_export  # torch loads only after flags are valid

        result = run_export(options)
    except ExportError as exc:
        _write_result(args.result, failed_result(exc))
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - still leave a RESULT.json for the operator
        traceback.print_exc()
        error = ExportError(ExportReason.EXPORT_FAILED, f"unexpected {type(exc).__name__}: {exc}")
        _write_result(args.result, failed_result(error))
        return 1
    _write_result(args.result, result)
    print(f"exported {result['artifact']}: fp32 max abs error {result['parity']['fp32']['maxAbsError']:.3g}, "
          f"variants {result['variants'] or 'none'}, target {result['target']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
