"""Which graph of a verified artifact this process serves, judged on this process's own CPU.

Decides, for a requested graph (fp32, fp16, int8): it must be in the signed manifest (an export
leaves an ungated variant out), and its top-1 agreement with torch on the artifact's numerics probe,
measured here, must reach the probe's gate; otherwise the request falls back to the fp32 graph when
allowed, or is refused. The verdict names the CPU features, because int8 kernels differ by CPU.
Must not verify signatures or read files: the artifact loader hands in vouched-for bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tugboat_workloads.numerics_probe import Probe, describe_cpu

GRAPH_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
FP32 = "fp32"


@dataclass(frozen=True)
class GraphVerdict:
    graph: str
    accepted: bool
    reason: str              # Accepted, NotPublished, NoProbe, ProbeBelowGate, ProbeUnchecked
    message: str
    agreement: float | None = None


@dataclass(frozen=True)
class GraphChoice:
    """What was asked, what is served, and why; reported by /readyz, metrics and the log."""

    requested: str
    served: str
    reason: str
    message: str
    cpu: str
    agreement: float | None
    gate: float | None


def judge_graph(graph: str, in_manifest: bool, probe: Probe | None, measure: Callable[[], float],
                cpu: str) -> GraphVerdict:
    """Judge one graph; `measure` runs the probe on it (called only when there is something to judge)."""
    file = GRAPH_FILES[graph]
    if not in_manifest:
        return GraphVerdict(graph, False, "NotPublished",
                            f"{file} is not in the signed artifact (the export did not publish it: "
                            "see export_report.json)")
    if probe is None:
        if graph == FP32:  # artifacts exported before the probe existed still serve their fp32 graph
            return GraphVerdict(graph, True, "ProbeUnchecked", f"{file}: the artifact has no numerics probe")
        return GraphVerdict(graph, False, "NoProbe",
                            f"{file}: the artifact has no numerics probe to check a reduced-precision graph")
    agreement = measure()
    if agreement < probe.min_top1_agreement:
        return GraphVerdict(graph, False, "ProbeBelowGate",
                            f"{file}: top-1 agreement with torch {agreement:.4f} on this CPU ({cpu}) is "
                            f"below the gate {probe.min_top1_agreement:g}", agreement)
    return GraphVerdict(graph, True, "Accepted",
                        f"{file}: top-1 agreement {agreement:.4f} on this CPU ({cpu}), gate "
                        f"{probe.min_top1_agreement:g}", agreement)


def choose_graph(requested: str, allow_fallback: bool, judge: Callable[[str], GraphVerdict],
                 cpu_features: list[str], gate: float | None) -> GraphChoice | GraphVerdict:
    """The GraphChoice to serve, or the refusing GraphVerdict when nothing acceptable is allowed."""
    cpu = describe_cpu(cpu_features)
    first = judge(requested)
    if first.accepted:
        return GraphChoice(requested, requested, first.reason, first.message, cpu, first.agreement, gate)
    if requested == FP32 or not allow_fallback:
        return first
    fallback = judge(FP32)
    if not fallback.accepted:
        return GraphVerdict(FP32, False, fallback.reason,
                            f"{first.message}; fallback refused too: {fallback.message}", fallback.agreement)
    return GraphChoice(requested, FP32, first.reason, f"{first.message}; serving the fp32 graph instead",
                       cpu, fallback.agreement, gate)
