"""Benchmark: training throughput of Ray Train (TorchTrainer, 2 CPU workers, gloo) against plain
single-process torch, same model (the default MoE config), same data, same global batch.

Rounds are interleaved (single, ray, single, ray, ...) so background load hits both alike, and
medians are reported. Two Ray numbers: steady-state tokens/s (median step, what the training
loop logs) and end-to-end tokens/s including TorchTrainer's fixed start/stop cost per fit().

    python tests/bench/bench_train.py [--steps 60] [--rounds 3]

Prints a table and writes tests/bench/results/train.json. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tugboat_workloads.data import load_tokens
from tugboat_workloads.train import ray_launch
from tugboat_workloads.train.config import parse_train_config
from tugboat_workloads.train.loop import LoopInputs, run_training
from tugboat_workloads.train.session import LocalSession, NullSink

RESULTS = Path(__file__).parent / "results" / "train.json"
URI = "builtin://arithmetic?samples=4096&seed=0"


def make_config(storage: str, steps: int, workers: int):
    return parse_train_config({
        "name": "bench", "namespace": "bench", "storagePath": storage, "data": {"uri": URI},
        "training": {"steps": steps, "batchSize": 16, "checkpointInterval": steps},
        "resources": {"workers": workers, "cpusPerWorker": 1},
        "routerHealth": {"action": "None"},  # identical work in both modes
    })


def single_round(steps: int) -> dict:
    with tempfile.TemporaryDirectory() as storage:
        cfg = make_config(storage, steps, workers=1)
        table = load_tokens(URI, cfg.model.vocab_size, cfg.model.seq_len)
        started = time.perf_counter()
        inputs = LoopInputs(cfg, table, progress_every=10**9)
        summary = run_training(inputs, LocalSession(storage), NullSink())
        wall = time.perf_counter() - started
    return _round("single-process", summary.metrics["tokensPerSecond"], steps, wall)


def ray_round(steps: int, index: int) -> dict:
    with tempfile.TemporaryDirectory() as storage:
        cfg = make_config(storage, steps, workers=2)
        table = load_tokens(URI, cfg.model.vocab_size, cfg.model.seq_len)
        started = time.perf_counter()
        outcome = ray_launch.fit(LoopInputs(cfg, table, progress_every=10**9), f"bench-{index}", run_id="")
        wall = time.perf_counter() - started
    if outcome.summary is None:
        raise RuntimeError(f"Ray round failed: {outcome.error}")
    return _round("ray-2-workers", outcome.summary["metrics"]["tokensPerSecond"], steps, wall)


def _round(mode: str, steady: float, steps: int, wall: float) -> dict:
    tokens = steps * 16 * 32
    # Wall time beyond what the steps themselves take at the steady rate: start/stop overhead.
    return {"mode": mode, "steady_tokens_per_second": steady, "end_to_end_tokens_per_second": tokens / wall,
            "wall_seconds": wall, "overhead_seconds": wall - tokens / steady}


def summarize(rounds: list[dict]) -> dict:
    out = {}
    for mode in ("single-process", "ray-2-workers"):
        mine = [r for r in rounds if r["mode"] == mode]
        out[mode] = {key: statistics.median(r[key] for r in mine)
                     for key in ("steady_tokens_per_second", "end_to_end_tokens_per_second", "wall_seconds",
                                 "overhead_seconds")}
    single, ray = out["single-process"], out["ray-2-workers"]
    out["ratio_steady_ray_over_single"] = ray["steady_tokens_per_second"] / single["steady_tokens_per_second"]
    out["ratio_end_to_end_ray_over_single"] = (
        ray["end_to_end_tokens_per_second"] / single["end_to_end_tokens_per_second"])
    return out


def print_table(medians: dict, rounds: int) -> None:
    print(f"\nmedians over {rounds} interleaved rounds")
    print(f"{'mode':<16}{'steady tok/s':>14}{'end-to-end tok/s':>18}{'wall s':>9}{'overhead s':>12}")
    for mode in ("single-process", "ray-2-workers"):
        m = medians[mode]
        print(f"{mode:<16}{m['steady_tokens_per_second']:>14,.0f}{m['end_to_end_tokens_per_second']:>18,.0f}"
              f"{m['wall_seconds']:>9.1f}{m['overhead_seconds']:>12.1f}")
    print(f"ratio ray/single: steady {medians['ratio_steady_ray_over_single']:.2f}x, "
          f"end-to-end {medians['ratio_end_to_end_ray_over_single']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)  # the single process gets both cores; each Ray worker gets one
    os.environ.pop("RAY_ADDRESS", None)  # measure a private local cluster
    started_local = ray_launch.connect(make_config("/tmp", args.steps, 2).resources)
    rounds = []
    try:
        for index in range(args.rounds):
            rounds.append(single_round(args.steps))
            rounds.append(ray_round(args.steps, index))
            print(f"round {index + 1}: " + ", ".join(
                f"{r['mode']} {r['steady_tokens_per_second']:,.0f} tok/s" for r in rounds[-2:]), flush=True)
    finally:
        if started_local:
            import ray

            ray.shutdown()
    medians = summarize(rounds)
    print_table(medians, args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "train", "steps": args.steps, "rounds": args.rounds, "global_batch": 16, "seq_len": 32,
        "model": make_config("/tmp", args.steps, 2).model.to_dict(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "per_round": rounds, "median": medians,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
