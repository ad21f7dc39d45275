"""Benchmark: ONNX Runtime vs eager torch latency for the MoE, and artifact verification throughput.

1. Latency. Exports the default MoE (2 layers, dModel 128, 8 experts, top-2; random weights,
   seed 0) with the real export pipeline, then times eager torch and ONNX Runtime on the same
   tokens at batch 1 and 16 (full sequence length), both engines with the same thread budget
   (1 thread, then one per core). Rounds are
   interleaved and alternate their order, so background load hits both engines alike; the
   figure is the median of every timed call.
2. Verification throughput. Writes a >= 1 GiB artifact in a temporary directory (two layouts:
   8 weight shards, and one single file), signs it with the real signer, then times
   `verify_artifact` against `openssl dgst -sha256` over the same files, interleaved in the same
   run: openssl on one core, that figure times the number of cores (the ideal parallel
   baseline), and openssl actually run as one process per core. Files sit in the page cache
   (just written), so this measures hashing, not the disk. The directory is deleted afterwards.

Prints a table with ratios and writes tests/bench/results/export.json. A benchmark, not a test.

    python tests/bench/bench_export.py [--rounds 8] [--size-gib 1.0] [--skip-latency] [--skip-verify]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tests" / "bench" / "results" / "export.json"
CORES = os.cpu_count() or 1
MIB = 1024 * 1024


# ---------------------------------------------------------------- latency: torch vs ONNX Runtime

def export_default_moe(workdir: Path) -> tuple[object, Path, dict]:
    """Save a seeded default-config checkpoint and export it with the real pipeline."""
    import torch

    from tugboat_workloads.export.options import ExportOptions
    from tugboat_workloads.export.pipeline import run_export
    from tugboat_workloads.moe import MoEConfig, MoETransformer, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = MoETransformer(MoEConfig.from_dict({}))
    checkpoint = save_checkpoint(workdir / "ckpt", model, step=0, metrics={})
    result = run_export(ExportOptions(checkpoint=checkpoint, out=workdir / "artifact"))
    model, _config, _step = load_checkpoint(checkpoint)
    return model, workdir / "artifact" / "model.onnx", result


def time_calls(call, iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bench_latency(rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-export-") as tmp:
        started = time.perf_counter()
        model, onnx_path, export_result = export_default_moe(Path(tmp))
        export_seconds = time.perf_counter() - started
        # Both engines get the same thread budget; one thread is also shown because a loaded
        # 2-core machine punishes multi-threaded eager torch far more than ORT.
        results = {f"threads{t}": latency_at(model, onnx_path, t, rounds) for t in sorted({1, CORES})}
    return {"model": model.config.to_dict(), "parameters": model.parameter_count(),
            "export_seconds": export_seconds,
            "fp32_parity_max_abs_error": export_result["parity"]["fp32"]["maxAbsError"], "results": results}


def latency_at(model, onnx_path: Path, threads: int, rounds: int) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch

    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    seq_len, vocab = model.config.seq_len, model.config.vocab_size
    results = {}
    for batch, iterations in ((1, 25), (16, 6)):
        tokens = np.random.default_rng(batch).integers(0, vocab, size=(batch, seq_len), dtype=np.int64)
        torch_tokens = torch.from_numpy(tokens)

        def run_torch(t=torch_tokens):
            with torch.inference_mode():
                model(t)

        def run_ort(t=tokens):
            session.run(None, {"tokens": t})

        samples = interleaved({"torch_eager": run_torch, "onnxruntime": run_ort}, rounds, iterations)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        results[f"batch{batch}"] = {
            "seq_len": seq_len,
            "median_ms": medians,
            "p90_ms": {n: statistics.quantiles(v, n=10)[-1] for n, v in samples.items()},
            "calls_per_engine": len(samples["torch_eager"]),
            "speedup_ort_over_torch": medians["torch_eager"] / medians["onnxruntime"],
        }
    return results


def interleaved(engines: dict, rounds: int, iterations: int) -> dict[str, list[float]]:
    """Per-call milliseconds of each engine, rounds alternating which engine goes first."""
    for call in engines.values():  # warm-up: allocator, thread pools, ORT's first run
        time_calls(call, 3)
    samples: dict[str, list[float]] = {name: [] for name in engines}
    for round_index in range(rounds):
        order = list(engines) if round_index % 2 == 0 else list(reversed(engines))
        for name in order:
            samples[name] += time_calls(engines[name], iterations)
    return samples


# ---------------------------------------------------------------- verification throughput

def write_artifact(root: Path, total_bytes: int, files: int) -> list[Path]:
    """`files` weight files totalling `total_bytes` (random bytes; SHA-256 speed ignores content)."""
    root.mkdir(parents=True)
    block = os.urandom(64 * MIB)
    per_file = total_bytes // files
    paths = []
    for index in range(files):
        path = root / ("weights.bin" if files == 1 else f"weights-{index:05d}-of-{files:05d}.bin")
        with path.open("wb") as handle:
            remaining = per_file
            while remaining > 0:
                chunk = block[: min(remaining, len(block))]
                handle.write(chunk)
                remaining -= len(chunk)
        paths.append(path)
    (root / "model_config.json").write_text(json.dumps({"layers": 2, "dModel": 128}) + "\n")
    return paths


def openssl_seconds(paths: list[Path], processes: int) -> float:
    """Wall time of `openssl dgst -sha256` over `paths`, split across `processes` concurrent processes."""
    groups = [paths[i::processes] for i in range(processes)]
    started = time.perf_counter()
    running = [subprocess.Popen(["openssl", "dgst", "-sha256", *map(str, group)], stdout=subprocess.DEVNULL)
               for group in groups if group]
    for proc in running:
        if proc.wait() != 0:
            raise RuntimeError("openssl dgst failed")
    return time.perf_counter() - started


def bench_layout(workdir: Path, name: str, total_bytes: int, files: int, rounds: int) -> dict:
    from tugboat_workloads.sign.keys import generate_keypair
    from tugboat_workloads.sign.signer import sign_artifact
    from tugboat_workloads.verify import verify_artifact

    artifact = workdir / name
    paths = write_artifact(artifact, total_bytes, files)
    size = sum(p.stat().st_size for p in artifact.iterdir())
    generate_keypair(workdir / f"{name}.pem", workdir / f"{name}.pub")
    started = time.perf_counter()
    sign_artifact(artifact, workdir / f"{name}.pem")
    sign_seconds = time.perf_counter() - started
    verify_artifact(artifact, workdir / f"{name}.pub")  # warm-up, and proof the artifact verifies

    timings = {"verify_artifact": [], "openssl_1_core": [], f"openssl_{CORES}_processes": []}
    runs = {
        "verify_artifact": lambda: _seconds(lambda: verify_artifact(artifact, workdir / f"{name}.pub")),
        "openssl_1_core": lambda: openssl_seconds(paths, 1),
        f"openssl_{CORES}_processes": lambda: openssl_seconds(paths, CORES),
    }
    for round_index in range(rounds):
        order = list(runs) if round_index % 2 == 0 else list(reversed(runs))
        for key in order:
            timings[key].append(runs[key]())
    median = {key: statistics.median(values) for key, values in timings.items()}
    gib = size / 1024**3
    ideal = f"openssl_1_core_x_{CORES}"
    throughput = {key: gib / seconds for key, seconds in median.items()}
    throughput[ideal] = throughput["openssl_1_core"] * CORES
    shutil.rmtree(artifact)
    return {
        "files": files, "bytes": size, "sign_seconds": sign_seconds,
        "median_seconds": median, "throughput_gib_s": throughput,
        "verify_vs_openssl_1_core": throughput["verify_artifact"] / throughput["openssl_1_core"],
        f"verify_vs_{ideal}": throughput["verify_artifact"] / throughput[ideal],
        f"verify_vs_openssl_{CORES}_processes":
            throughput["verify_artifact"] / throughput[f"openssl_{CORES}_processes"],
    }


def _seconds(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def bench_verification(size_gib: float, rounds: int) -> dict:
    total = int(size_gib * 1024**3)
    with tempfile.TemporaryDirectory(prefix="tugboat-bench-verify-") as tmp:
        return {
            "sharded_8_files": bench_layout(Path(tmp), "sharded", total, 8, rounds),
            "single_file": bench_layout(Path(tmp), "single", total, 1, rounds),
        }


# ---------------------------------------------------------------- report

def print_tables(latency: dict | None, verification: dict | None) -> None:
    if latency:
        seq = latency["model"]["seqLen"]
        print(f"\nLatency, default MoE ({latency['parameters']:,} params), seq {seq}, median ms")
        print(f"{'threads':>8} {'batch':>6} {'torch eager':>12} {'onnxruntime':>12} {'ORT speed-up':>13}")
        for threads, rows in latency["results"].items():
            for key, row in rows.items():
                medians = row["median_ms"]
                print(f"{threads[7:]:>8} {key[5:]:>6} {medians['torch_eager']:>12.2f} "
                      f"{medians['onnxruntime']:>12.2f} {row['speedup_ort_over_torch']:>12.2f}x")
    if verification:
        print(f"\nVerification throughput, GiB/s (median of rounds; {CORES} cores)")
        columns = ["verify_artifact", "openssl_1_core", f"openssl_1_core_x_{CORES}",
                   f"openssl_{CORES}_processes"]
        print(f"{'layout':>16} " + " ".join(f"{c:>20}" for c in columns) + f" {'verify/(1core x n)':>19}")
        for layout, row in verification.items():
            values = " ".join(f"{row['throughput_gib_s'][c]:>20.2f}" for c in columns)
            print(f"{layout:>16} {values} {row[f'verify_vs_openssl_1_core_x_{CORES}']:>19.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args()
    if args.size_gib < 1.0 and not args.skip_verify:
        print("note: --size-gib below 1 is a smoke run, not the benchmark", file=sys.stderr)
    started = time.perf_counter()
    latency = None if args.skip_latency else bench_latency(args.rounds)
    verification = None if args.skip_verify else bench_verification(args.size_gib, max(3, args.rounds // 2))
    print_tables(latency, verification)
    report = {
        "benchmark": "export: onnxruntime vs torch eager latency; artifact verification vs openssl",
        "unix_time": int(time.time()),
        "machine": {"cpus": CORES, "python": platform.python_version(), "load_avg_at_end": os.getloadavg()},
        "interleaved": True,
        "latency": latency,
        "verification": verification,
        "wall_seconds": time.perf_counter() - started,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)} in {report['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
