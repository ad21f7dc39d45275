"""One export run: checkpoint -> checked ONNX -> parity -> variants -> report -> (TensorRT engine).

Decides the order of the steps, which files the artifact directory may hold, and that nothing is
reported Succeeded unless the fp32 graph is within tolerance at every parity shape. It must not
sign (that is a separate Job step, `tugboat_workloads.sign`) nor write outside `--out`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tugboat_workloads.export.onnx_graph import ExportView, check_onnx, export_onnx, interface_json
from tugboat_workloads.export.options import ExportOptions
from tugboat_workloads.export.outcome import ExportError, ExportReason, succeeded_result
from tugboat_workloads.export.parity import (
    held_out_inputs,
    measure_parity,
    onnx_session,
    parity_shapes,
    probe_inputs,
    session_logits,
    torch_reference,
)
from tugboat_workloads.export.report import (
    export_report,
    gate_variant,
    parity_failure_message,
    variant_parity,
)
from tugboat_workloads.export.tensorrt_engine import ENGINE_FILE, build_tensorrt_engine, tensorrt_plan
from tugboat_workloads.export.variants import VARIANT_FILES, build_variant, variant_settings
from tugboat_workloads.moe.checkpoint import CheckpointError, load_checkpoint
from tugboat_workloads.moe.model import MoETransformer
from tugboat_workloads.numerics_probe import PROBE_FILE, Probe, cpu_features, make_probe, top1_agreement
from tugboat_workloads.sign.manifest_file import MANIFEST_FILE, SIGNATURE_FILE

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
CONFIG_FILE = "model_config.json"
REPORT_FILE = "export_report.json"
# Files a (re-)export may replace; anything else in --out is someone else's and stops the export.
_OWNED_FILES = {ONNX_FILE, f"{ONNX_FILE}.data", *VARIANT_FILES.values(), CONFIG_FILE, REPORT_FILE,
                ENGINE_FILE, PROBE_FILE}
# A signature of an earlier export would not match the new files: drop it rather than leave it stale.
_STALE_SIGNING_FILES = {MANIFEST_FILE, SIGNATURE_FILE, ".model.sig.partial", ".manifest.json.partial"}


def run_export(options: ExportOptions) -> dict[str, Any]:
    """Run the export described by `options`; return the Succeeded RESULT.json or raise ExportError."""
    model, step = _load(confined_checkpoint(options.checkpoint, options.checkpoint_root))
    config = model.config
    out = prepare_out_dir(options.out)
    onnx_path = out / ONNX_FILE
    started = time.perf_counter()
    export_onnx(model, onnx_path, options.opset)
    check_onnx(onnx_path, config, options.opset)
    log.info("exported and checked %s in %.1f s", onnx_path, time.perf_counter() - started)
    (out / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    inputs = held_out_inputs(parity_shapes(config.seq_len), config.vocab_size)
    reference = torch_reference(ExportView(model), inputs)
    fp32_errors, fp32_top1 = measure_parity(onnx_path, inputs, reference)
    parity = {"fp32": variant_parity(ONNX_FILE, fp32_errors, options.tolerance, fp32_top1)}
    report = _report_writer(options, out, step, interface_json(onnx_path))
    if not parity["fp32"]["passed"]:
        report(parity)
        raise ExportError(ExportReason.PARITY_EXCEEDED, parity_failure_message(parity["fp32"]),
                          {"artifact": str(out.resolve()), "parity": parity})
    log.info("fp32 parity: max abs error %.3g (tolerance %g)",
             parity["fp32"]["maxAbsError"], options.tolerance)

    # The probe travels inside the signed artifact: serving nodes re-run it on their own CPU.
    probe_tokens = probe_inputs(config.seq_len, config.vocab_size)
    probe_logits = torch_reference(ExportView(model), {"probe": probe_tokens})["probe"]["logits"]
    probe = make_probe(probe_tokens, probe_logits, config.vocab_size, options.min_top1_agreement)
    (out / PROBE_FILE).write_text(probe.to_json())
    parity["fp32"]["probeTop1Agreement"] = _probe_agreement(onnx_path, probe)

    for name in options.variants:
        variant_path = build_variant(name, onnx_path, out)
        errors, top1 = measure_parity(variant_path, inputs, reference)
        entry = variant_parity(variant_path.name, errors, None, top1)
        entry["settings"] = variant_settings(name)
        gated = gate_variant(entry, _probe_agreement(variant_path, probe), options.min_top1_agreement)
        parity[name] = gated
        if not gated["published"]:
            variant_path.unlink()  # an unpublished graph is not in the artifact, so nothing can serve it
        log.info("%s variant: max abs error %s, top-1 agreement %.4f, probe %.4f: %s", name,
                 gated["maxAbsError"], top1, gated["probeTop1Agreement"],
                 "published" if gated["published"] else f"not published ({gated['reason']})")
    return _finish(options, out, config.seq_len, parity, report)


def _probe_agreement(path: Path, probe: Probe) -> float:
    return top1_agreement(session_logits(onnx_session(path)), probe)


def _finish(options: ExportOptions, out: Path, seq_len: int, parity: dict[str, Any],
            report: Callable[..., None]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if options.target == "tensorrt":
        extra["tensorrt"] = tensorrt_plan(seq_len, options.trt_precision)
    report(parity, extra)
    if options.target == "tensorrt":
        try:
            build_tensorrt_engine(out / ONNX_FILE, out / ENGINE_FILE, options.trt_precision, seq_len)
        except ExportError as exc:
            exc.details.update(artifact=str(out.resolve()), parity=parity, **extra)
            raise
    return succeeded_result(
        artifact=str(out.resolve()), files=sorted(p.name for p in out.iterdir()), parity=parity,
        opset=options.opset, variants=list(options.variants), target=options.target, extra=extra)


def confined_checkpoint(checkpoint: Path, root: Path | None) -> Path:
    """The checkpoint's real path, refused unless it lies under `root`'s (symlinks resolved, so a
    link in the run's storage cannot lead the export into another tenant's files)."""
    real = checkpoint.resolve()
    if root is not None and not real.is_relative_to(root.resolve()):
        raise ExportError(ExportReason.UNTRUSTED_CHECKPOINT,
                          f"checkpoint {checkpoint} resolves to {real}, outside {root}/")
    return real


def _load(checkpoint: Path) -> tuple[MoETransformer, int]:
    try:
        model, _config, step = load_checkpoint(checkpoint)
    except (CheckpointError, RuntimeError, ValueError) as exc:
        # RuntimeError: load_state_dict on weights that do not fit model_config.json.
        raise ExportError(ExportReason.INVALID_CHECKPOINT, f"checkpoint {checkpoint}: {exc}") from exc
    return model, step


def prepare_out_dir(out: Path) -> Path:
    """Create `out`, or empty it of an earlier export's files; refuse anything an export does not own."""
    out.mkdir(parents=True, exist_ok=True)
    foreign = sorted(p.name for p in out.iterdir() if p.name not in _OWNED_FILES | _STALE_SIGNING_FILES
                     or not p.is_file())
    if foreign:
        raise ExportError(ExportReason.OUTPUT_NOT_EMPTY,
                          f"--out {out} holds files an export does not own: {', '.join(foreign)}")
    for path in out.iterdir():
        path.unlink()
    return out


def _report_writer(options: ExportOptions, out: Path, step: int,
                   interface: dict[str, Any]) -> Callable[..., None]:
    """A function (re)writing export_report.json with what is known so far; the rest stays fixed."""
    versions = {name: version(name) for name in ("torch", "onnx", "onnxscript", "onnxruntime")}
    machine = {"cpuFeatures": cpu_features()}

    def write(parity: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        report = export_report(opset=options.opset, tolerance=options.tolerance,
                               checkpoint=str(options.checkpoint.resolve()), step=step, target=options.target,
                               parity=parity, versions=versions, interface=interface,
                               extra={"exportMachine": machine, "probe": PROBE_FILE,
                                      "minTop1Agreement": options.min_top1_agreement, **(extra or {})})
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")

    return write
