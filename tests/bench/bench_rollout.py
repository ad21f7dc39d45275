"""Benchmark: a bad canary's blast radius, and how fast a weight change reaches the traffic.

Ratios against baselines measured in the same run, never pass/fail.

Real parts throughout (rollout_world.py): control plane, operator process, serving pods of a
signed artifact behind the nginx dev gateway, judged by the real Prometheus.

1. Blast radius, for each analysis interval (--intervals) and round: a release whose canary pods
   answer half their requests with HTTP 500 (a dev fault rule) is let go under steady traffic
   through the gateway and rolls back by itself. Reported: the requests the bad canary served
   as a share of all requests from let-go until its last one, its share while exposed against
   the step's weight (the split the route asked for), and the seconds from the first breaching
   sample in Prometheus to weight 0 on the HTTPRoute, also in analysis intervals (aim: <= 2), with
   the chain in between (breach decided, plan weight 0, route weight 0, nginx reloaded, last bad
   request) and the way up (plan weight > 0 -> route -> first canary answer).
2. Weight change -> traffic: a bench-owned HTTPRoute splitting between the two AgentDeployments'
   stable Services is flipped 100/0 <-> 0/100 under traffic; time from the write to the last
   request the old side served, against the dev gateway's own reload (write -> `nginx -s
   reload` done) and against one request's latency straight to a pod and through the gateway.

Request times are when each request started (answer time minus its latency); route and plan
weights are sampled every 0.1 s. Writes tests/bench/results/rollout.json and rollout.md.

    python tests/bench/bench_rollout.py [--rounds 3] [--intervals 2,4] [--flips 6] [--rate 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.bench.rollout_world import (  # noqa: E402
    GATEWAY,
    LINES,
    NS,
    World,
    let_go,
    pod_address,
    release,
    rollout_of,
    route_weights,
    start_world,
)
from tests.integration.helpers import first_sample, wait_for  # noqa: E402
from tugboat.builders.agent_deployment import GATEWAY_API, STABLE, serving_name, track_service_name  # noqa: E402
from tugboat.dev.dataplane.faults import FaultRule, add_rule  # noqa: E402
from tugboat.dev.traffic import Served, TrafficPlan, run_traffic  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results" / "rollout.json"
CANARY_WEIGHT = 25
SPLIT_ROUTE, SPLIT_HOST = "bench-split", "split.example.test"
TERMINAL = ("RolledBack", "Promoted")
DRAIN = 4.0  # seconds after weight 0 for answers in flight and nginx's reload


class Answers:
    """Bounded traffic through the gateway in a thread; each answer with its request's start time."""

    def __init__(self, url: str, host: str, rate: float, headers: dict[str, str], seconds: float = 900):
        self.plan = TrafficPlan(url=url, host=host, headers=headers, rate=rate, duration=seconds,
                                concurrency=4, timeout=15, vocab_size=16)
        self.records: list[tuple[float, Served]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run_traffic, daemon=True, kwargs={
            "plan": self.plan, "stop": self.stop,
            "on_served": lambda s: self.records.append((time.time() - s.latency, s))})

    def __enter__(self) -> Answers:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)

    def between(self, t0: float, t1: float = float("inf")) -> list[tuple[float, Served]]:
        return [(t, s) for t, s in list(self.records) if t0 <= t <= t1]


@dataclass(frozen=True)
class Sample:
    at: float
    route_canary: int  # the canary's weight on the HTTPRoute
    plan: int          # the release's planned weight for the target


class Sampler:
    """The agent's route weights and the release's plan, and every nginx reload, 10 times a second."""

    def __init__(self, world: World, agent: str, release: str):
        self.world, self.agent, self.release = world, agent, release
        self.samples: list[Sample] = []
        self.reloads: set[float] = set()  # wall-clock times nginx took a new configuration
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self.reloads.update(gateway_reloads(self.world))
            try:
                weights = route_weights(self.world.kube, self.agent)
                targets = rollout_of(self.world.kube, self.release).get("targets") or []
            except Exception:  # noqa: BLE001 - an API hiccup is a missed sample
                continue
            canary = weights[1] if len(weights) > 1 else 0
            self.samples.append(Sample(time.time(), canary, max((t["weight"] for t in targets), default=0)))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def gateway_reloads(world: World) -> set[float]:
    """The gateway's last reload as a wall-clock time (it keeps a monotonic one)."""
    at = world.gateway.programmed_at
    return set() if at is None else {time.time() - (time.monotonic() - at)}


def edges(samples: list[Sample], field: str) -> tuple[float | None, float | None, float | None]:
    """(first sample > 0, last sample > 0, first sample back at 0 after it) of `field`."""
    raised = [s.at for s in samples if getattr(s, field) > 0]
    if not raised:
        return None, None, None
    back = next((s.at for s in samples if s.at > raised[-1]), None)
    return raised[0], raised[-1], back


def first_after(times, t: float | None) -> float | None:
    later = sorted(x for x in times if t is not None and x > t)
    return later[0] if later else None


def rollout_spec(interval: float) -> dict:
    check = {"name": "error-rate", "metric": "ErrorRate", "threshold": 0.05, "interval": f"{interval:g}s",
             "window": f"{5 * interval:g}s", "count": 2, "minRequests": 5, "inconclusiveLimit": 8}
    return {"steps": [{"weight": CANARY_WEIGHT}, {"weight": 50}], "analysis": {"checks": [check]}}


def blast_round(world: World, answers: Answers, interval: float, error_rate: float, index: int) -> dict:
    line = LINES[0]
    name = f"{line.name}-bad-{interval:g}s-{index}"
    add_rule(world.plane.state_dir, FaultRule(name, error_rate=error_rate))
    release(world, name, line.name, rollout_spec(interval), held=True)
    wait_for(lambda: rollout_of(world.kube, name).get("phase") == "Paused", timeout=60, interval=0.5,
             what=f"{name} held at weight 0")
    with Sampler(world, line.agent, name) as sampler:
        t0 = let_go(world, name)
        rollout = wait_for(lambda: (r := rollout_of(world.kube, name)).get("phase") in TERMINAL and r,
                           timeout=300, interval=0.5, what=f"{name} rolled back")
        wait_for(lambda: route_weights(world.kube, line.agent)[1:] in ([], [0]), timeout=60,
                 what=f"{line.agent}'s canary weight 0")
        time.sleep(DRAIN)
    return summarise_blast(world, answers.between(t0), sampler, rollout, name, interval, t0)


def summarise_blast(world: World, answered, sampler: Sampler, rollout: dict, name: str,
                    interval: float, t0: float) -> dict:
    bad = [(t, s) for t, s in answered if s.release == name]
    route_up, route_last, route_zero = edges(sampler.samples, "route_canary")
    plan_up, _, plan_zero = edges(sampler.samples, "plan")
    out = {"release": name, "interval_s": interval, "phase": rollout.get("phase"),
           "breach": (rollout.get("breach") or {}).get("message")}
    if not bad or route_zero is None:
        return out | {"error": "the canary never served or its weight never came back to 0"}
    first_bad, last_bad = bad[0][0], max(t for t, _ in bad)
    until_last = [a for a in answered if a[0] <= last_bad]
    exposed = [a for a in answered if first_bad <= a[0] <= last_bad]
    try:
        breach_sample = first_sample(world.plane.info.prometheus_url,
                                     f'tugboat_requests_total{{release="{name}",track="canary",code=~"5.."}}')
    except AssertionError as exc:  # rolled back for another reason: this round has no figure
        return out | {"error": str(exc)}
    decided = datetime.fromisoformat(rollout["breach"]["time"]).timestamp() if rollout.get("breach") else None
    reload_zero = first_after(sampler.reloads, route_last)
    since = lambda t: None if t is None else round(t - breach_sample, 2)  # noqa: E731
    return out | {
        "requests": len(until_last), "bad_requests": len(bad),
        "bad_errors": sum(1 for _, s in bad if s.status != 200),
        "blast_radius": len(bad) / len(until_last),
        "canary_share_while_exposed": len(bad) / len(exposed), "step_weight": CANARY_WEIGHT / 100,
        "exposure_s": round(last_bad - first_bad, 2),
        "breach_sample_to_route_zero_s": round(route_zero - breach_sample, 2),
        "breach_sample_to_route_zero_intervals": round((route_zero - breach_sample) / interval, 2),
        "chain_from_breach_sample_s": {
            "breach_decided": since(decided), "plan_weight_0": since(plan_zero),
            "route_weight_0": since(route_zero), "nginx_reloaded": since(reload_zero),
            "last_bad_request": since(last_bad)},
        "way_up_s": {"let_go_to_plan_weight": _delta(t0, plan_up),
                     "plan_to_route_weight": _delta(plan_up, route_up),
                     "route_weight_to_first_canary_answer": _delta(route_up, first_bad)},
        "status_exposure": rollout.get("exposure"), "status_breach_exposure": rollout.get("breachExposure"),
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 3)


def split_route(weights: tuple[int, int]) -> dict:
    refs = [{"name": track_service_name(line.agent, STABLE), "port": 80, "weight": w}
            for line, w in zip(LINES, weights, strict=True)]
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": {"name": SPLIT_ROUTE, "namespace": NS},
            "spec": {"parentRefs": [GATEWAY], "hostnames": [SPLIT_HOST],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                                "backendRefs": refs}]}}


def flip_rounds(world: World, flips: int, rate: float) -> list[dict]:
    """Flip the split route between the two lines' stable Services under traffic."""
    a, b = (line.first for line in LINES)
    world.kube.apply(split_route((100, 0)))
    with Answers(world.gateway.url, SPLIT_HOST, rate, world.headers) as answers:
        wait_for(lambda: {s.release for _, s in answers.between(time.time() - 1)} == {a}, timeout=60,
                 interval=0.5, what=f"{SPLIT_HOST} served by {a} only")
        rounds = []
        for index in range(flips):
            old, new = (a, b) if index % 2 == 0 else (b, a)
            time.sleep(1.5)
            before = world.gateway.programmed_at
            written = time.time()
            world.kube.apply(split_route((0, 100) if new == b else (100, 0)))
            wait_for(lambda b=before: world.gateway.programmed_at != b, timeout=30, interval=0.005,
                     what="the gateway reloaded")
            reloaded = min(gateway_reloads(world))
            time.sleep(DRAIN)
            answered = answers.between(written - 2)
            last_old = max((t for t, s in answered if s.release == old), default=None)
            first_new = min((t for t, s in answered if s.release == new and t > written), default=None)
            row = {"to": new, "gateway_reload_s": _delta(written, reloaded),
                   "write_to_last_old_request_s": _delta(written, last_old),
                   "write_to_first_new_request_s": _delta(written, first_new),
                   "not_200": sum(1 for _, s in answered if s.status != 200)}
            rounds.append(row)
            print(f"flip {index + 1}: {json.dumps(row)}", flush=True)
    world.kube.delete(GATEWAY_API, "HTTPRoute", SPLIT_ROUTE, NS)
    return rounds


def request_latencies(url: str, host: str | None, count: int, headers: dict[str, str]) -> list[float]:
    """Seconds of each request, one at a time (no queueing), to `url`."""
    report = run_traffic(TrafficPlan(url=url, host=host, headers=headers, rate=200, duration=None,
                                     count=count, concurrency=1, timeout=10, vocab_size=16))
    ok = [s.latency for s in report.served if s.status == 200]
    if len(ok) < count // 2:
        raise RuntimeError(f"only {len(ok)} of {count} requests to {url} answered 200: {report.to_json()}")
    return ok


def baselines(world: World, rounds: int = 4, count: int = 50) -> dict:
    """One request straight to the stable pod and through the gateway, in alternating rounds after a
    warm-up of both, so background load hits both alike."""
    line = LINES[0]
    ways = {"direct_to_pod_p50_s": (f"http://{pod_address(world, serving_name(line.agent))}", None),
            "through_gateway_p50_s": (world.gateway.url, line.host)}
    latencies: dict[str, list[float]] = {key: [] for key in ways}
    for url, host in ways.values():
        request_latencies(url, host, 20, world.headers)
    for index in range(rounds):
        for key in ways if index % 2 == 0 else reversed(ways):
            latencies[key] += request_latencies(*ways[key], count, world.headers)
    return {key: round(statistics.median(values), 4) for key, values in latencies.items()}


def _median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def medians(blast: list[dict], flips: list[dict], base: dict) -> dict:
    per_interval = {}
    for interval in sorted({r["interval_s"] for r in blast}):
        rows = [r for r in blast if r["interval_s"] == interval and "error" not in r]
        per_interval[f"{interval:g}s"] = {k: _median(rows, k) for k in (
            "blast_radius", "bad_requests", "bad_errors", "canary_share_while_exposed", "exposure_s",
            "breach_sample_to_route_zero_s", "breach_sample_to_route_zero_intervals")} | {
            "chain_from_breach_sample_s": {k: _median([r["chain_from_breach_sample_s"] for r in rows], k)
                                           for k in ("breach_decided", "plan_weight_0", "route_weight_0",
                                                     "nginx_reloaded", "last_bad_request")},
            "rounds": len(rows),
            "failed_rounds": sum(1 for r in blast if r["interval_s"] == interval) - len(rows)}
    switch = _median(flips, "write_to_last_old_request_s")
    reload = _median(flips, "gateway_reload_s")
    return {"blast": per_interval, "weight_to_traffic": {
        "write_to_last_old_request_s": switch,
        "write_to_first_new_request_s": _median(flips, "write_to_first_new_request_s"),
        "gateway_reload_s": reload,
        "ratio_to_gateway_reload": round(switch / reload, 2) if switch and reload else None,
        "in_requests_through_gateway": round(switch / base["through_gateway_p50_s"], 1) if switch else None,
        **base}}


def markdown(summary: dict, rate: float) -> str:
    lines = [f"| analysis interval | rounds | bad / all requests | canary share while exposed (weight "
             f"{CANARY_WEIGHT}%) | first breaching sample -> weight 0 | in intervals | -> last bad request |",
             "|---|---|---|---|---|---|---|"]
    for interval, m in summary["blast"].items():
        chain = m["chain_from_breach_sample_s"]
        lines.append(f"| {interval} | {m['rounds']} | {_pct(m['blast_radius'])} "
                     f"({m['bad_requests']} bad, {m['bad_errors']} errors) | "
                     f"{_pct(m['canary_share_while_exposed'])} | {_s(m['breach_sample_to_route_zero_s'])} | "
                     f"{_x(m['breach_sample_to_route_zero_intervals'])} | {_s(chain['last_bad_request'])} |")
    w = summary["weight_to_traffic"]
    lines += ["", "| weight change -> traffic (HTTPRoute write -> last request to the old side) | "
              "baseline: gateway reload (write -> nginx -s reload done) | ratio | "
              "one request: direct to pod / through gateway |",
              "|---|---|---|---|",
              f"| {_s(w['write_to_last_old_request_s'])} "
              f"(first to the new side {_s(w['write_to_first_new_request_s'])}) "
              f"| {_s(w['gateway_reload_s'])} | {_x(w['ratio_to_gateway_reload'])} | "
              f"{w['direct_to_pod_p50_s'] * 1000:.1f} ms / {w['through_gateway_p50_s'] * 1000:.1f} ms |",
              "", f"Traffic {rate:g} requests/s through the gateway; medians over rounds."]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="bad canaries per analysis interval")
    parser.add_argument("--intervals", default="2,4", help="analysis intervals in seconds, comma-separated")
    parser.add_argument("--flips", type=int, default=6, help="weight flips of the split route")
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s during the blast rounds")
    parser.add_argument("--split-rate", type=float, default=40.0, help="requests/s during the flips")
    parser.add_argument("--error-rate", type=float, default=0.5, help="the bad canary's share of HTTP 500")
    args = parser.parse_args()
    intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    started = time.monotonic()
    world = start_world(Path(tempfile.mkdtemp(prefix="tugboat-bench-rollout-")))
    blast: list[dict] = []
    try:
        setup_s = time.monotonic() - started
        base = baselines(world)
        flips = flip_rounds(world, args.flips, args.split_rate)
        line = LINES[0]
        with Answers(world.gateway.url, line.host, args.rate, world.headers) as answers:
            for index in range(args.rounds):  # intervals interleaved: background load hits each alike
                for interval in intervals:
                    row = blast_round(world, answers, interval, args.error_rate, index)
                    blast.append(row)
                    print(f"bad canary, interval {interval:g}s, round {index + 1}: "
                          f"{json.dumps({k: v for k, v in row.items() if k != 'breach'})}", flush=True)
    finally:
        world.stop()
    summary = medians(blast, flips, base)
    table = markdown(summary, args.rate)
    print("\n" + table)
    report = {"benchmark": "rollout blast radius and weight-change latency", "unix_time": int(time.time()),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "load": {"rate": args.rate, "split_rate": args.split_rate, "error_rate": args.error_rate,
                       "canary_step_weight": CANARY_WEIGHT, "intervals_s": intervals, "rounds": args.rounds,
                       "flips": args.flips},
              "median": summary, "blast_rounds": blast, "flip_rounds": flips,
              "setup_seconds": round(setup_s, 1), "total_seconds": round(time.monotonic() - started, 1)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    RESULTS.with_suffix(".md").write_text(table + "\n")
    print(f"wrote {RESULTS} and {RESULTS.with_suffix('.md').name} in {report['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
