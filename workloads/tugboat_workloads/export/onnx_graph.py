"""Turning the MoE transformer into an ONNX graph with dynamic batch and sequence axes, and checking it.

Decides the graph's interface (input `tokens` int64 [batch, seq]; outputs `logits` [batch, seq,
vocab], `expert_load` [layers, experts], `router_entropy` [layers]), that the dynamo exporter is
used (the legacy one turns index_add into a scatter without addition, WORKLOADS.md), and what
`onnx.checker` plus the interface check must accept. It must not judge numerical parity
(`parity.py`) nor write anything but the one .onnx file (and its external data when > 2 GB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from tugboat_workloads.export.outcome import ExportError, ExportReason
from tugboat_workloads.moe.config import MoEConfig
from tugboat_workloads.moe.model import MoETransformer

INPUT_NAME = "tokens"
OUTPUT_NAMES = ("logits", "expert_load", "router_entropy")
# The example input only drives tracing; batch 2 keeps the exporter from specialising on 0/1 sizes.
_EXAMPLE_BATCH = 2
_EXAMPLE_SEED = 0


class ExportView(nn.Module):
    """The served subset of MoEOutput, as a tuple in OUTPUT_NAMES order (training-only losses left out)."""

    def __init__(self, model: MoETransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(tokens)
        return out.logits, out.expert_load, out.router_entropy


def export_onnx(model: MoETransformer, path: Path, opset: int) -> None:
    """Write `model` (eval mode) to `path` as ONNX at `opset`, batch and seq dynamic."""
    config = model.config
    generator = torch.Generator().manual_seed(_EXAMPLE_SEED)
    example = torch.randint(0, config.vocab_size, (_EXAMPLE_BATCH, config.seq_len), generator=generator)
    # seq is bounded by the position-embedding table; batch is not bounded at all.
    dims = {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("seq", min=1, max=config.seq_len)}
    view = ExportView(model.eval()).eval()
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                view, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES), dynamic_shapes={"tokens": dims}, verbose=False)
        program.save(path, external_data=None)  # external data only above protobuf's 2 GB limit
    except Exception as exc:  # noqa: BLE001 - the exporter raises many unrelated types
        raise ExportError(
            ExportReason.EXPORT_FAILED,
            f"torch.onnx.export (dynamo, opset {opset}) failed: {type(exc).__name__}: {exc}") from exc


def check_onnx(path: Path, config: MoEConfig, opset: int) -> None:
    """onnx.checker (full, with shape inference) plus the interface contract; raise OnnxCheckFailed."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(ExportReason.ONNX_CHECK_FAILED, f"{path.name}: onnx.checker: {exc}") from exc
    model = onnx.load(str(path), load_external_data=False)
    problems = interface_problems(graph_interface(model), config)
    default_opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if default_opset != opset:
        problems.append(f"opset is {default_opset}, expected {opset}")
    if problems:
        raise ExportError(ExportReason.ONNX_CHECK_FAILED, f"{path.name}: " + "; ".join(problems))


def graph_interface(model: onnx.ModelProto) -> dict[str, dict[str, Any]]:
    """{"inputs"|"outputs": {name: (element type name, [dim_param or dim_value, ...])}}."""
    def describe(values) -> dict[str, tuple[str, list[Any]]]:
        described = {}
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
            described[value.name] = (onnx.TensorProto.DataType.Name(tensor.elem_type), dims)
        return described

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}


def interface_json(path: Path) -> dict[str, Any]:
    """The graph interface as JSON for the report: {side: {name: {"dtype", "shape"}}}."""
    found = graph_interface(onnx.load(str(path), load_external_data=False))
    return {side: {name: {"dtype": dtype, "shape": dims} for name, (dtype, dims) in values.items()}
            for side, values in found.items()}


def expected_interface(config: MoEConfig) -> dict[str, dict[str, Any]]:
    return {
        "inputs": {INPUT_NAME: ("INT64", ["batch", "seq"])},
        "outputs": {
            "logits": ("FLOAT", ["batch", "seq", config.vocab_size]),
            "expert_load": ("FLOAT", [config.layers, config.experts]),
            "router_entropy": ("FLOAT", [config.layers]),
        },
    }


def interface_problems(found: dict[str, dict[str, Any]], config: MoEConfig) -> list[str]:
    """Every way `found` differs from the contract, as readable sentences (empty when it matches)."""
    problems = []
    for side, expected in expected_interface(config).items():
        actual = found.get(side, {})
        if list(actual) != list(expected):
            problems.append(f"{side} are {list(actual)}, expected {list(expected)}")
            continue
        for name, (dtype, dims) in expected.items():
            if tuple(actual[name]) != (dtype, dims):
                problems.append(f"{side[:-1]} {name!r} is {actual[name][0]} {actual[name][1]}, "
                                f"expected {dtype} {dims}")
    return problems
