"""The variant gate at export, the numerics probe file, and the serving runtime's graph choice."""

import numpy as np
import pytest

from tugboat_workloads.export.report import gate_variant
from tugboat_workloads.numerics_probe import (
    Probe,
    ProbeError,
    cpu_features,
    describe_cpu,
    make_probe,
    parse_probe,
    top1_agreement,
)
from tugboat_workloads.serve.graph_choice import GraphChoice, GraphVerdict, choose_graph, judge_graph

ENTRY = {"file": "model.int8.onnx", "gated": False, "top1Agreement": 0.99, "maxAbsError": 0.7}


def test_a_variant_at_or_above_the_gate_on_both_input_sets_is_published():
    gated = gate_variant(ENTRY, 0.97, 0.97)
    assert gated["published"] is True and gated["passed"] is True and gated["gated"] is True
    assert gated["reason"] is None and gated["minTop1Agreement"] == 0.97


@pytest.mark.parametrize(("parity", "probe", "named"), [
    (0.8267, 0.99, "parity"), (0.99, 0.96, "probe"), (0.5, 0.5, "parity top-1 agreement 0.5000 and probe")])
def test_a_variant_below_the_gate_is_not_published_and_the_reason_names_the_figure(parity, probe, named):
    gated = gate_variant({**ENTRY, "top1Agreement": parity}, probe, 0.97)
    assert gated["published"] is False and gated["passed"] is False
    assert named in gated["reason"] and "below the gate 0.97" in gated["reason"]


def _probe(gate=0.97) -> Probe:
    inputs = np.arange(24, dtype=np.int64).reshape(3, 8) % 16
    logits = np.eye(16)[(inputs + 1) % 16]  # "next token" model
    return make_probe(inputs, logits, 16, gate)


def test_the_probe_round_trips_and_counts_agreement_per_position():
    probe = parse_probe(_probe().to_json(), vocab_size=16, seq_len=8)
    assert top1_agreement(lambda t: np.eye(16)[(t + 1) % 16], probe) == 1.0
    # wrong on exactly the last position of every row: 3 of 24
    def mostly(t):
        out = np.eye(16)[(t + 1) % 16]
        out[:, -1] = np.eye(16)[0]
        return out
    assert top1_agreement(mostly, probe) == pytest.approx(1 - sum(
        ((probe.inputs[:, -1] + 1) % 16) != 0) / 24)
    assert top1_agreement(lambda t: np.zeros((len(t), 2, 16)), probe) == 0.0  # wrong shape: no credit


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(version=2), lambda d: d.pop("top1"), lambda d: d.update(top1=[[1]]),
    lambda d: d.update(minTop1Agreement=1.5), lambda d: d.update(inputs=[[99] * 8] * 3)])
def test_a_probe_that_does_not_fit_is_refused(mutate):
    import json
    data = json.loads(_probe().to_json())
    mutate(data)
    with pytest.raises(ProbeError):
        parse_probe(json.dumps(data), vocab_size=16, seq_len=8)


def test_cpu_features_name_the_int8_relevant_flags():
    info = "processor: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n"
    assert cpu_features(info) == ["avx2", "fma", "avx512f", "avx512_vnni"]
    assert describe_cpu(["avx2", "fma"]) == "avx2 fma (no VNNI)"
    assert describe_cpu(["avx2", "avx512_vnni"]) == "avx2 avx512_vnni"


def _judge(agreements: dict[str, float], published=("fp32", "int8"), probe=True):
    def judge(graph):
        return judge_graph(graph, graph in published, _probe() if probe else None,
                           lambda: agreements[graph], "avx2")
    return judge


def test_a_variant_that_passes_the_probe_here_is_served():
    choice = choose_graph("int8", True, _judge({"int8": 0.99}), ["avx2"], 0.97)
    assert isinstance(choice, GraphChoice) and choice.served == "int8" and choice.reason == "Accepted"


def test_a_variant_below_the_gate_here_falls_back_to_fp32_when_allowed_and_says_why():
    choice = choose_graph("int8", True, _judge({"int8": 0.8267, "fp32": 1.0}), ["avx2", "fma"], 0.97)
    assert isinstance(choice, GraphChoice)
    assert (choice.requested, choice.served, choice.reason) == ("int8", "fp32", "ProbeBelowGate")
    assert "0.8267" in choice.message and "avx2" in choice.message and choice.cpu == "avx2 fma (no VNNI)"


def test_a_variant_below_the_gate_without_fallback_is_refused():
    verdict = choose_graph("int8", False, _judge({"int8": 0.5}), ["avx2"], 0.97)
    assert isinstance(verdict, GraphVerdict) and not verdict.accepted and verdict.reason == "ProbeBelowGate"


def test_an_unpublished_variant_is_never_measured_and_fp32_serves_instead():
    choice = choose_graph("int8", True, _judge({"fp32": 1.0}, published=("fp32",)), ["avx2"], 0.97)
    assert choice.served == "fp32" and choice.reason == "NotPublished"


def test_without_a_probe_only_fp32_is_served():
    assert choose_graph("fp32", False, _judge({}, probe=False), ["avx2"], None).reason == "ProbeUnchecked"
    verdict = choose_graph("int8", False, _judge({}, probe=False), ["avx2"], None)
    assert isinstance(verdict, GraphVerdict) and verdict.reason == "NoProbe"


def test_fp32_below_the_gate_is_refused_too():
    verdict = choose_graph("int8", True, _judge({"int8": 0.5, "fp32": 0.5}), ["avx2"], 0.97)
    assert isinstance(verdict, GraphVerdict) and "fallback refused too" in verdict.message
