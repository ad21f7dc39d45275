"""Benchmark: Tugboat at scale on the real local control plane (issue #12).

For each N, on a fresh cluster with the operator as its own process: apply N objects of the mix in
scale_mix.py, then time until each one's status has caught up (observedGeneration == generation,
conditions set); the operator's peak RSS and CPU seconds from /proc; the API server's own
apiserver_request_total by verb and resource. Baseline in the same run, on the same cluster: the
operator stopped, N bare status patches by a plain client at the same concurrency; the headline is
the ratio of Tugboat's objects/s to that raw rate. Then (operator restarted and settled) an idle
phase and repeated spec changes. Every phase is bounded and records what it got when timed out.
The metric has no user-agent label: apply/settle counts include the bench's own polling, idle
counts include the control plane's own clients (the bench sends nothing then); said in the JSON.

    python tests/bench/scale_bench.py [--sizes 100,1000,5000] [--idle-seconds 300] [--changes 20]
        [--timeout 1200] [--label before] [--operator-src DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_mix  # noqa: E402
import scale_probe  # noqa: E402
import scale_report  # noqa: E402

from tests.integration.conftest import OperatorProcess, _free_port  # noqa: E402
from tugboat.dev.cluster import DevCluster  # noqa: E402
from tugboat.kube.client import Kube  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results"
CONCURRENCY = 8
KINDS = ("Tenant", "AgentDeployment", "ModelRelease", "TrainingRun")


class Sampler(threading.Thread):
    """Peak RSS of the operator, sampled every half second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_rss_mb, self._stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak_rss_mb = max(self.peak_rss_mb, scale_probe.proc_stats(self.pid)["rss_mb"])
            except (FileNotFoundError, ProcessLookupError):
                return

    def stop(self) -> None:
        self._stop.set()


def requests(cluster: DevCluster):
    return scale_probe.request_counts(cluster.kubectl("get", "--raw", "/metrics").stdout)


def operator_counts(op: OperatorProcess):
    with urllib.request.urlopen(f"http://{op.metrics_address}/metrics", timeout=10) as answer:
        return scale_probe.operator_counts(answer.read().decode())


def start_operator(cluster: DevCluster, work: Path, src: Path | None) -> OperatorProcess:
    if src is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT / "workloads")])
    op = OperatorProcess(cluster.kubeconfig, work / f"operator-{uuid.uuid4().hex[:4]}.log", "--standalone",
                         "--metrics-port", str(_free_port()), "--health-port", str(_free_port()))
    op.wait_for_log("tugboat operator: priority", timeout=120)
    return op


def statuses(kube: Kube) -> dict[tuple, dict]:
    out = {}
    for kind in KINDS:
        for obj in kube.list(scale_mix.API, kind):
            out[(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj
    return out


def wait_settled(kube: Kube, keys: set, timeout: float, poll: float = 0.5) -> tuple[dict, str]:
    """When each key was first seen settled; a note if not all by the timeout."""
    seen: dict[tuple, float] = {}
    started = time.time()
    while len(seen) < len(keys) and time.time() - started < timeout:
        now = time.time()
        for key, obj in statuses(kube).items():
            if key in keys and key not in seen and scale_probe.settled(obj):
                seen[key] = now
        time.sleep(poll)
    done = f"{len(seen)}/{len(keys)}"
    note = "" if len(seen) == len(keys) else f"timed out after {timeout:.0f} s with {done} done"
    return seen, note


def key(doc: dict) -> tuple:
    return (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])


def raw_patches(kube: Kube, objs: list[dict]) -> float:
    """Seconds for one bare status patch per object at CONCURRENCY (operator stopped)."""
    def patch(obj: dict) -> None:
        kube.patch_status(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                          obj["metadata"].get("namespace"),
                          {"observedGeneration": obj["metadata"].get("generation")})
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(patch, objs))
    return time.monotonic() - started


def spec_changes(kube: Kube, agents: list[dict], changes: int, timeout: float = 30) -> tuple[list, str]:
    latencies: list[float] = []
    for i in range(changes):
        a = agents[i % len(agents)]
        name, ns = a["metadata"]["name"], a["metadata"]["namespace"]
        started = time.time()
        gen = kube.patch(scale_mix.API, "AgentDeployment", name, ns,
                         {"spec": {"replicas": 2 if i % 2 == 0 else 1}})["metadata"]["generation"]
        while time.time() - started < timeout:
            st = kube.get(scale_mix.API, "AgentDeployment", name, ns).get("status") or {}
            if st.get("observedGeneration") == gen:
                latencies.append(time.time() - started)
                break
            time.sleep(0.05)
        else:
            return latencies, f"change {i} timed out after {timeout} s"
    return latencies, ""


def measure(n: int, args, work: Path) -> dict:
    cluster = DevCluster(f"scale-{uuid.uuid4().hex[:6]}", workdir=work / f"kwok-{n}")
    op = None
    result: dict = {"n": n, "counts": scale_mix.counts(n)}
    try:
        cluster.up(log=lambda m: print(m, file=sys.stderr))
        cluster.trust()
        kube = Kube.connect(str(cluster.kubeconfig))
        cluster.kubectl("apply", "-f", str(ROOT / "examples" / "00-namespaces.yaml"))
        op = start_operator(cluster, work, args.operator_src)
        sampler = Sampler(op.proc.pid)
        sampler.start()
        docs = scale_mix.build(n)
        counted = [d for d in docs if scale_mix.is_counted(d)]
        before, cpu0 = requests(cluster), scale_probe.proc_stats(op.proc.pid)["cpu_seconds"]
        applied: dict[tuple, float] = {}

        def apply(doc: dict) -> None:
            kube.apply(doc)
            applied[key(doc)] = time.time()
        started = time.time()
        for d in docs:
            if d["kind"] == "Namespace":
                kube.apply(d)
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(apply, counted))
        seen, note = wait_settled(kube, set(applied), args.timeout)
        settle = (max(seen.values()) - started) if seen else None
        lat = [seen[k] - applied[k] for k in seen]
        result.update(
            settle_seconds=settle, note=note, settled=len(seen),
            p50_seconds=scale_probe.percentile(lat, 50), p99_seconds=scale_probe.percentile(lat, 99),
            reconciles_per_second=(len(seen) / settle) if settle else None,
            cpu_seconds=scale_probe.proc_stats(op.proc.pid)["cpu_seconds"] - cpu0,
            api_requests_by_verb_resource=scale_probe.delta(requests(cluster), before))
        result["api_requests"] = sum(result["api_requests_by_verb_resource"].values())

        idle0, idle_cpu0 = requests(cluster), scale_probe.proc_stats(op.proc.pid)["cpu_seconds"]
        passes0 = operator_counts(op)
        time.sleep(args.idle_seconds)
        idle = scale_probe.delta(requests(cluster), idle0)
        minutes = args.idle_seconds / 60
        result.update(idle_seconds=args.idle_seconds,
                      idle_requests_by_verb_resource=idle,
                      idle_operator_by_verb_kind=scale_probe.delta(operator_counts(op), passes0),
                      idle_requests_per_minute=sum(idle.values()) / minutes if minutes else None,
                      idle_cpu_seconds_per_minute=(scale_probe.proc_stats(op.proc.pid)["cpu_seconds"]
                                                   - idle_cpu0) / minutes if minutes else None)
        agents = [d for d in counted if d["kind"] == "AgentDeployment"]
        lat_changes, change_note = spec_changes(kube, agents, args.changes)
        result.update(change_p50_seconds=scale_probe.percentile(lat_changes, 50),
                      change_p99_seconds=scale_probe.percentile(lat_changes, 99),
                      changes_done=len(lat_changes), change_note=change_note)
        sampler.stop()
        result["peak_rss_mb"] = sampler.peak_rss_mb
        op.stop()
        op = None
        objs = list(statuses(kube).values())
        raw = raw_patches(kube, objs)
        result["raw_per_second"] = len(objs) / raw
        if result["reconciles_per_second"]:
            result["ratio_to_raw"] = result["reconciles_per_second"] / result["raw_per_second"]
    finally:
        if op is not None:
            op.stop()
        cluster.down()
    return result


def git_commit(src: Path) -> str:
    out = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--idle-seconds", type=float, default=300)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1200, help="settle timeout per size (s)")
    parser.add_argument("--label", default="before")
    parser.add_argument("--operator-src", type=Path, default=None,
                        help="operator/ dir whose code the operator process runs (e.g. another worktree)")
    parser.add_argument("--quick", action="store_true", help="N=50, 20 s idle, 5 changes")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.idle_seconds, args.changes = "50", 20, 5
    src = args.operator_src or ROOT / "operator"
    work = Path(tempfile.mkdtemp(prefix="tugboat-bench-scale-"))
    run = {"label": args.label, "commit": git_commit(src), "operator_src": str(src),
           "concurrency": CONCURRENCY, "sizes": [],
           "request_counts_note": "apiserver_request_total has no user-agent label: apply/settle "
                                  "counts include the bench's own 0.5 s polling; idle counts include "
                                  "the control plane's own clients (the bench sends nothing then)"}
    for n in [int(s) for s in args.sizes.split(",")]:
        size = measure(n, args, work)
        run["sizes"].append(size)
        scale_report.write(RESULTS, args.label, run)
        print({k: v for k, v in size.items() if not k.endswith("verb_resource")}, flush=True)
    print(scale_report.markdown(scale_report.write(RESULTS, args.label, run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
