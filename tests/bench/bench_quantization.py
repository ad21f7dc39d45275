"""Benchmark: top-1 agreement with torch of each int8 quantization scheme, per CPU instruction set.

ONNX Runtime picks its int8 GEMM kernels by CPU: with VNNI (AVX512_VNNI / AVX_VNNI) a U8S8 dot
product accumulates in int32; without it (plain AVX2, AVX-512 without VNNI) pairs of u8*s8
products are summed into int16 with saturation. So the same signed int8 graph can answer
differently by node. This measures every scheme in variants.INT8_SCHEMES on two models (the export
test's tiny random model, and the example's model shape trained for a few hundred steps on the
arithmetic task) on:
  - this machine's CPU (its features are printed), and
  - an AVX2-only CPU without VNNI or AVX-512 (`qemu-x86_64 -cpu Haswell`, Debian's qemu-user: TCG
    emulates AVX2 since QEMU 7.2), so the saturating path is measured on any host.
The baseline in the same run is the fp32 graph's agreement on the same inputs and CPU.

    python tests/bench/bench_quantization.py [--train-steps 600] [--no-emulation]

Writes tests/bench/results/quantization.json and prints a table. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results" / "quantization.json"
TINY = {"layers": 2, "dModel": 32, "heads": 2, "experts": 4, "topK": 2, "dFF": 64, "vocabSize": 64,
        "seqLen": 16}
EXAMPLE = {"layers": 2, "dModel": 128, "heads": 4, "experts": 8, "topK": 2, "capacityFactor": 1.25,
           "auxLossCoef": 0.01}
EMULATED_CPU = "Haswell"  # AVX2 + FMA, no AVX-512, no VNNI


def _tiny_random(out: Path) -> Path:
    import torch

    from tugboat_workloads.moe import MoEConfig, MoETransformer, save_checkpoint

    torch.manual_seed(7)
    model = MoETransformer(MoEConfig.from_dict(TINY))
    model.set_gate_temperature(1.3)
    return save_checkpoint(out / "tiny-random", model, step=0, metrics={})


def _trained(out: Path, steps: int) -> Path:
    """The example's model shape, trained single-process on the example's dataset (seed fixed)."""
    import torch
    import torch.nn.functional as F

    from tugboat_workloads.data import load_tokens
    from tugboat_workloads.moe import MoEConfig, MoETransformer, save_checkpoint

    torch.manual_seed(0)
    config = MoEConfig.from_dict(EXAMPLE)
    model = MoETransformer(config)
    table = load_tokens("builtin://arithmetic?samples=4096&seed=0", config.vocab_size, config.seq_len)
    rows = torch.tensor(table.to_lists(), dtype=torch.int64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        batch = rows[torch.randint(0, len(rows), (16,), generator=generator)]
        out_ = model(batch[:, :-1])
        loss = F.cross_entropy(out_.logits.reshape(-1, config.vocab_size), batch[:, 1:].reshape(-1))
        optimizer.zero_grad()
        (loss + out_.aux_loss).backward()
        optimizer.step()
    model.eval()
    print(f"trained {steps} steps: loss {loss.item():.3f}", file=sys.stderr)
    return save_checkpoint(out / f"trained-{steps}", model, step=steps, metrics={"loss": loss.item()})


def _prepare(checkpoint: Path, out: Path) -> dict:
    """fp32 graph, torch references for the parity inputs and the probe, and every int8 scheme."""
    import numpy as np

    from tugboat_workloads.export.onnx_graph import ExportView, export_onnx
    from tugboat_workloads.export.parity import held_out_inputs, parity_shapes, probe_inputs, torch_reference
    from tugboat_workloads.export.variants import INT8_SCHEMES, build_variant
    from tugboat_workloads.moe import load_checkpoint

    model, config, _ = load_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out / "model.onnx", 18)
    inputs = held_out_inputs(parity_shapes(config.seq_len), config.vocab_size)
    inputs["probe"] = probe_inputs(config.seq_len, config.vocab_size)
    reference = torch_reference(ExportView(model), inputs)
    np.savez(out / "inputs.npz", **{k: v for k, v in inputs.items()})
    np.savez(out / "top1.npz", **{k: reference[k]["logits"].argmax(-1) for k in inputs})
    for name in INT8_SCHEMES:
        build_variant("int8", out / "model.onnx", out, int8_scheme=name, out_name=f"int8-{name}.onnx")
    static = _static_qdq(out, config)
    return {"graphs": ["model.onnx", *(f"int8-{n}.onnx" for n in INT8_SCHEMES), *static]}


def _static_qdq(out: Path, config) -> list[str]:
    """Static QDQ, per-channel weights, calibrated on seeded random tokens: compared, not shipped
    (it needs calibration data the export would have to carry)."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Tokens(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self._batches = iter([{"tokens": rng.integers(0, config.vocab_size, size=(4, config.seq_len))}
                                  for _ in range(8)])

        def get_next(self):
            return next(self._batches, None)

    quant_pre_process(str(out / "model.onnx"), str(out / "prepared.onnx"))
    names = []
    for reduce_range in (False, True):
        name = f"int8-qdq-static-per-channel{'-reduce-range' if reduce_range else ''}.onnx"
        quantize_static(str(out / "prepared.onnx"), str(out / name), Tokens(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=reduce_range, op_types_to_quantize=["MatMul"],
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        names.append(name)
    return names


# Runs in a child process (natively, or under qemu): onnxruntime and numpy only.
_MEASURE = r"""
import json, sys
import numpy as np, onnxruntime as ort
out = sys.argv[1]
inputs, top1 = np.load(f"{out}/inputs.npz"), np.load(f"{out}/top1.npz")
from tugboat_workloads.numerics_probe import cpu_features
result = {"cpuFeatures": cpu_features()}  # CPUID as this process sees it (emulated CPUs included)
for graph in sys.argv[2:]:
    opts = ort.SessionOptions(); opts.intra_op_num_threads = 1; opts.log_severity_level = 3
    s = ort.InferenceSession(f"{out}/{graph}", sess_options=opts, providers=["CPUExecutionProvider"])
    agree = {"parity": [0, 0], "probe": [0, 0]}
    for key in inputs.files:
        logits = s.run(["logits"], {"tokens": inputs[key]})[0]
        bucket = agree["probe" if key == "probe" else "parity"]
        bucket[0] += int((logits.argmax(-1) == top1[key]).sum()); bucket[1] += top1[key].size
    result[graph] = {k: a / n for k, (a, n) in agree.items()}
print(json.dumps(result))
"""


def _measure(out: Path, graphs: list[str], emulate: bool) -> dict:
    cmd = [sys.executable, "-c", _MEASURE, str(out), *graphs]
    if emulate:
        cmd = ["qemu-x86_64", "-cpu", EMULATED_CPU, *cmd]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-steps", type=int, default=600)  # the example TrainingRun
    parser.add_argument("--no-emulation", action="store_true")
    args = parser.parse_args()
    emulation = not args.no_emulation and shutil.which("qemu-x86_64") is not None
    report: dict = {"emulatedCpu": EMULATED_CPU if emulation else None, "models": {}}
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-quant-") as tmp:
        tmp_path = Path(tmp)
        trained = f"example-trained-{args.train_steps}"
        for label, make in (("tiny-random", lambda: _tiny_random(tmp_path)),
                            (trained, lambda: _trained(tmp_path, args.train_steps))):
            out = tmp_path / f"graphs-{label}"
            graphs = _prepare(make(), out)["graphs"]
            cpus = {"host": _measure(out, graphs, emulate=False)}
            if emulation:
                cpus["avx2-no-vnni"] = _measure(out, graphs, emulate=True)
            report["models"][label] = cpus
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'model':28} {'cpu':14} {'graph':46} {'parity':>8} {'probe':>8}  vs fp32")
    for label, cpus in report["models"].items():
        for cpu, result in cpus.items():
            base = result["model.onnx"]["parity"]
            for graph, value in result.items():
                if graph == "cpuFeatures":
                    continue
                print(f"{label:28} {cpu:14} {graph:46} {value['parity']:8.4f} {value['probe']:8.4f}"
                      f"  {value['parity'] / base:.3f}x")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
