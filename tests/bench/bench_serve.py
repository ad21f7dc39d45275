"""Benchmark: the serving runtime with guardrails on vs off (requests/s, p50/p99 latency).

Builds a real signed ONNX artifact (tiny MoE trained for a few seconds, real export and sign
CLIs), starts two `python -m tugboat_workloads.serve` processes on 127.0.0.1 -- one with every
guardrail and the audit log on, one with --no-guardrails -- and drives both from this process
with aiohttp at a fixed concurrency, in interleaved rounds (the order alternates each round) so
background load hits both alike. Prints a table and the latency the guardrails add; writes
tests/bench/results/serve.json. A benchmark, not a test: it asserts only that every request
was answered 200.

    python tests/bench/bench_serve.py [--requests 2000] [--concurrency 8] [--rounds 10]
                                      [--artifact DIR --public-key PUB.pem]  (skip the build)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.workloads.serve_fixtures import TEST_CALLER, TEST_KEY, ServeProcess, build_signed_artifacts  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results" / "serve.json"
GUARDRAILS = {
    "promptFilter": {"denyPatterns": [r"(?i)ignore (all )?previous", r"\b(rm|sudo)\b", r"[<>{}]"],
                     "maxPromptChars": 256},
    "tokenBudget": {"tokensPerWindow": 10_000_000, "windowSeconds": 3600},
    "tools": {"allowed": ["search", "calculator"]},
    "fallback": {"minConfidence": 0.5, "mode": "Refuse"},
    "permissionLevel": "Standard",
    "costCenter": "cc-bench",
    "successDetector": {"kind": "Task"},
}


def make_bodies(count: int, vocab: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        start, stride = rng.randrange(vocab), rng.randrange(1, vocab)
        prompt = " ".join(str((start + stride * i) % vocab) for i in range(rng.randint(3, 6)))
        body = {"prompt": prompt, "maxTokens": 4}
        if rng.random() < 0.5:
            body["tools"] = [{"name": "search", "args": {"q": "x"}}]
        bodies.append(body)
    return bodies


async def run_round(url: str, bodies: list[dict], concurrency: int) -> tuple[list[float], float, dict]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue = list(reversed(bodies))
    headers = {"Authorization": f"Bearer {TEST_KEY}", "X-Permission-Level": "Standard"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            async with session.post(url + "/v1/generate", json=body, headers=headers) as response:
                await response.read()
                codes[response.status] = codes.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, codes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def drive(servers: dict[str, ServeProcess], args: argparse.Namespace) -> dict:
    per_round = args.requests // args.rounds
    bodies = make_bodies(per_round, vocab=16)
    stats = {mode: {"latencies": [], "rps": [], "codes": {}} for mode in servers}
    for server in servers.values():  # warm-up: first ORT runs and connection setup
        await run_round(server.url, bodies[:50], args.concurrency)
    for index in range(args.rounds):
        order = list(servers) if index % 2 == 0 else list(reversed(servers))
        for mode in order:
            latencies, elapsed, codes = await run_round(servers[mode].url, bodies, args.concurrency)
            stats[mode]["latencies"] += latencies
            stats[mode]["rps"].append(len(latencies) / elapsed)
            for code, n in codes.items():
                stats[mode]["codes"][str(code)] = stats[mode]["codes"].get(str(code), 0) + n
    return {mode: summarise(s) for mode, s in stats.items()}


def summarise(s: dict) -> dict:
    ms = [x * 1000 for x in s["latencies"]]
    return {"requests": len(ms), "codes": s["codes"],
            "rps_median": statistics.median(s["rps"]), "rps_rounds": [round(r, 1) for r in s["rps"]],
            "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99),
            "mean_ms": statistics.fmean(ms)}


def print_table(results: dict) -> None:
    print(f"\n{'mode':<16}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for mode, r in results.items():
        print(f"{mode:<16}{r['requests']:>9}{r['rps_median']:>9.1f}{r['p50_ms']:>9.2f}"
              f"{r['p90_ms']:>9.2f}{r['p99_ms']:>9.2f}")
    on, off = results["guardrails_on"], results["guardrails_off"]
    print(f"added by guardrails: p50 {on['p50_ms'] - off['p50_ms']:+.2f} ms, "
          f"p99 {on['p99_ms'] - off['p99_ms']:+.2f} ms, "
          f"throughput {100 * (on['rps_median'] / off['rps_median'] - 1):+.1f}%")


def guardrail_cpu_us(work: Path, count: int = 20_000) -> float:
    """In-process cost of the guardrail work per request (admission chain, budget, fallback
    decision, decision counters, audit line): immune to the loopback/scheduling noise above."""
    from tugboat_workloads.serve.admission import admit
    from tugboat_workloads.serve.audit_key import ephemeral_key
    from tugboat_workloads.serve.audit_log import AuditLog, build_audit_record
    from tugboat_workloads.serve.caller_keys import ApiKey, ApiKeys, key_digest
    from tugboat_workloads.serve.fallback_policy import decide_fallback
    from tugboat_workloads.serve.generate_request import parse_generate_request
    from tugboat_workloads.serve.guardrail_config import parse_guardrail_config
    from tugboat_workloads.serve.metrics import Identity, ServeMetrics
    from tugboat_workloads.serve.token_budget import TokenBudget

    config = parse_guardrail_config(GUARDRAILS)
    budget, audit = TokenBudget(config.token_budget), AuditLog(str(work / "micro-audit.jsonl"))
    metrics = ServeMetrics(Identity("r1", "stable", "acme", "agent"))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TEST_KEY}",
               "X-Permission-Level": "Standard"}
    keys = ApiKeys({key_digest(TEST_KEY): ApiKey(TEST_CALLER["name"], TEST_CALLER["permissionLevel"])})
    requests = [parse_generate_request(json.dumps(b).encode(), headers, 16)
                for b in make_bodies(100, vocab=16)]
    key = ephemeral_key()
    started = time.perf_counter()
    for i in range(count):
        request = requests[i % len(requests)]
        for verdict in admit(request, config, "acme", keys).verdicts:
            metrics.decision(verdict.guardrail, verdict.decision)
        verdict, reservation = budget.reserve("acme", request.max_tokens)
        metrics.decision(verdict.guardrail, verdict.decision)
        fallback = decide_fallback(0.9, 1.0, config.fallback)
        metrics.decision(fallback.guardrail, fallback.decision)
        budget.settle(reservation, request.max_tokens)
        audit.write(build_audit_record(
            request_id=str(i), tenant="acme", cost_center="cc-bench", caller=TEST_CALLER["name"],
            prompt=request.prompt, key=key, decision="allow", guardrail=None, reason="", status=200,
            tokens=4, model="primary", release="r1", track="stable", timestamp=time.time()))
    audit.close()
    return (time.perf_counter() - started) / count * 1e6


def start_servers(work: Path, artifact: Path, public_key: Path) -> dict[str, ServeProcess]:
    on = ServeProcess(work / "on", artifact, public_key, GUARDRAILS)
    off = ServeProcess(work / "off", artifact, public_key, GUARDRAILS, extra_args=("--no-guardrails",))
    return {"guardrails_on": on.wait_ready(), "guardrails_off": off.wait_ready()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per mode")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--artifact", type=Path, help="an existing signed artifact (vocabSize 16)")
    parser.add_argument("--public-key", type=Path, help="its public key")
    args = parser.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        artifact, public_key = args.artifact, args.public_key
        if artifact is None:
            built = build_signed_artifacts(Path(tmp) / "artifacts")
            artifact, public_key = built.trained, built.public_key
        build_seconds = time.monotonic() - t0
        servers = start_servers(Path(tmp), artifact, public_key)
        try:
            results = asyncio.run(drive(servers, args))
            audit_lines = len(servers["guardrails_on"].audit_lines())
            micro_us = guardrail_cpu_us(Path(tmp))
        finally:
            for server in servers.values():
                server.stop()
    print_table(results)
    print(f"guardrail work in-process: {micro_us:.1f} us of CPU per request")
    report = {
        "benchmark": "serve guardrails on vs off", "unix_time": int(time.time()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load": {"requests_per_mode": args.requests, "concurrency": args.concurrency,
                 "rounds": args.rounds, "maxTokens": 4, "interleaved": True},
        "results": results, "audit_lines_written": audit_lines,
        "added_latency_ms": {q: results["guardrails_on"][f"{q}_ms"] - results["guardrails_off"][f"{q}_ms"]
                             for q in ("p50", "p99")},
        "guardrail_cpu_us_per_request": round(micro_us, 1),
        "artifact_build_seconds": round(build_seconds, 1),
        "total_seconds": round(time.monotonic() - t0, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS} in {report['total_seconds']} s")
    ok = all(set(r["codes"]) == {"200"} for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
