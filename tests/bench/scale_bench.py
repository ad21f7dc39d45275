"""Benchmark: Tugboat at scale on the real local control plane (issue #12).

For each N, on a fresh cluster with the operator as its own process:
1. live: apply N objects of the mix in scale_mix.py (8 threads) and time until each one's status has
   caught up (observedGeneration == generation, conditions set: seen by a watch of each kind); the
   apply itself is timed too, since objects cannot settle faster than they are made;
2. idle, then repeated spec changes (apply to status);
3. raw baseline, operator stopped: N bare status patches by a plain client at the same concurrency;
4. backlog: every object's spec changed while the operator is down, then the operator started and
   timed until all caught up: its own throughput, and the ratio of that to the raw rate.
The operator's peak RSS and CPU seconds come from /proc, API requests from the API server's own
apiserver_request_total by verb and resource. Every phase is bounded and records what it got when
timed out. The metric has no user-agent label: live counts include the bench's own applies and
watches, idle counts the control plane's own clients (the bench sends nothing then).

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
from kubernetes import client, watch  # noqa: E402

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


class SettleWatch:
    """When each object was first seen settled, from a watch per kind started before the apply (a
    poll would list every object twice a second: at 5,000 the bench's own lists would load the API
    server and the 2 cores it shares with the operator)."""

    PLURALS = {"Tenant": "tenants", "AgentDeployment": "agentdeployments",
               "ModelRelease": "modelreleases", "TrainingRun": "trainingruns"}

    def __init__(self, kube: Kube):
        self.seen: dict[tuple, float] = {}
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._api = client.CustomObjectsApi(kube.api)
        group, _, self._version = scale_mix.API.partition("/")
        self._group = group
        self._threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in KINDS]
        for t in self._threads:
            t.start()

    def _note(self, kind: str, obj: dict) -> None:
        if scale_probe.settled(obj):
            k = (kind, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            with self._lock:
                self.seen.setdefault(k, time.time())

    def _run(self, kind: str) -> None:
        plural = self.PLURALS[kind]
        listed = self._api.list_cluster_custom_object(self._group, self._version, plural)
        for obj in listed["items"]:
            self._note(kind, obj)
        version = listed["metadata"]["resourceVersion"]
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(self._api.list_cluster_custom_object, self._group,
                                                  self._version, plural, resource_version=version,
                                                  timeout_seconds=30):
                    obj = event["raw_object"]
                    version = obj["metadata"].get("resourceVersion") or version
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._note(kind, obj)
                    if self._stop.is_set():
                        return
            except Exception as exc:  # noqa: BLE001 - a dropped watch resumes; a 410 means relist
                print(f"settle watch {plural}: {exc}; resuming", file=sys.stderr)
                time.sleep(0.5)

    def wait(self, keys: set, timeout: float) -> tuple[dict, str]:
        started = time.time()
        while time.time() - started < timeout:
            with self._lock:
                if keys <= self.seen.keys():
                    break
            time.sleep(0.1)
        self._stop.set()
        with self._lock:
            seen = {k: v for k, v in self.seen.items() if k in keys}
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
        settle_watch = SettleWatch(kube)
        time.sleep(1)  # the watches' first lists
        started = time.time()
        for d in docs:
            if d["kind"] == "Namespace":
                kube.apply(d)
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(apply, counted))
        applied_in = time.time() - started
        seen, note = settle_watch.wait(set(applied), args.timeout)
        settle = (max(seen.values()) - started) if seen else None
        lat = [seen[k] - applied[k] for k in seen]
        by_kind = {kind: [seen[k] - applied[k] for k in seen if k[0] == kind] for kind in KINDS}
        result.update(
            apply_seconds=applied_in,
            p99_by_kind_seconds={kind: scale_probe.percentile(v, 99) for kind, v in by_kind.items()},
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
        op = backlog(kube, cluster, counted, work, args, result)
    finally:
        if op is not None:
            op.stop()
        cluster.down()
    return result


def backlog(kube: Kube, cluster: DevCluster, counted: list[dict], work: Path, args, result: dict):
    """The operator's own throughput, not capped by how fast a client can apply: every object's
    spec changed while the operator was down (scale_mix.bump), then the time from the operator
    being ready (caches listed) until each object's status caught up. Also the test that a change
    made while the operator was down is reconciled once it is back. Returns the operator process."""
    def patch(doc: dict) -> None:
        kube.patch(scale_mix.API, doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"),
                   scale_mix.bump(doc))
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(patch, counted))
    settle_watch = SettleWatch(kube)  # lists them unsettled: each is seen once its status catches up
    time.sleep(1)
    before = requests(cluster)
    launched = time.time()
    op = start_operator(cluster, work, args.operator_src)
    ready = time.time()
    sampler = Sampler(op.proc.pid)
    sampler.start()
    seen, note = settle_watch.wait({key(d) for d in counted}, args.timeout)
    sampler.stop()
    took = (max(seen.values()) - ready) if seen else None
    result.update(backlog_startup_seconds=ready - launched, backlog_seconds=took, backlog_note=note,
                  backlog_per_second=len(seen) / took if took else None,
                  backlog_cpu_seconds=scale_probe.proc_stats(op.proc.pid)["cpu_seconds"],
                  backlog_peak_rss_mb=sampler.peak_rss_mb,
                  backlog_requests_by_verb_resource=scale_probe.delta(requests(cluster), before))
    if took:
        result["backlog_ratio_to_raw"] = result["backlog_per_second"] / result["raw_per_second"]
    return op


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
                                  "counts include the bench's own applies and its settle watches; idle "
                                  "counts include the control plane's own clients (the bench sends "
                                  "nothing then)"}
    for n in [int(s) for s in args.sizes.split(",")]:
        size = measure(n, args, work)
        run["sizes"].append(size)
        scale_report.write(RESULTS, args.label, run)
        print({k: v for k, v in size.items() if not k.endswith("verb_resource")}, flush=True)
    print(scale_report.markdown(scale_report.write(RESULTS, args.label, run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
