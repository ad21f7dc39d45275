"""Benchmark: time from `kubectl apply` of a TrainingRun to its first training step, against the
same training entrypoint submitted straight to the same local Ray cluster (no Kubernetes).

Starts a real local control plane, the dev data plane (local Ray head and MLflow) and the
operator, then alternates two ways of starting the same attempt (same config, fresh storage):
  apply   kubectl apply -> operator -> ConfigMap + RayJob -> scheduler places the Ray pods on the
          GPU pool -> data plane submits the entrypoint to Ray -> first step
  direct  Ray Jobs API submit of the entrypoint with that config -> first step
"First step" is the MLflow timestamp of the run's step-1 loss (the workload stamps each step when
it happens; metrics are flushed in batches, so polling latency does not count). Also reported:
when the TrainingRun's status first showed a step (what `kubectl get tr` shows; the operator
polls MLflow every 2 s). Medians and the ratio apply/direct; tests/bench/results/apply.json.

    python tests/bench/bench_apply.py [--rounds 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.integration.conftest import OperatorProcess, _free_port  # noqa: E402
from tugboat.dev.cluster import DevCluster  # noqa: E402
from tugboat.dev.dataplane import hostproc  # noqa: E402
from tugboat.dev.dataplane.plane import DataPlane  # noqa: E402
from tugboat.dev.dataplane.ray_jobs import RayJobs, Submission  # noqa: E402
from tugboat.kube.client import Kube  # noqa: E402
from tugboat.tracking import Tracking  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results" / "apply.json"
NS = "ml-platform"
EXPERIMENT = "bench-apply"


def training_run(name: str, steps: int) -> dict:
    doc = yaml.safe_load((ROOT / "examples" / "10-trainingrun.yaml").read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["training"].update(steps=steps, checkpointInterval=steps)
    doc["spec"]["mlflow"]["experiment"] = EXPERIMENT
    return doc


def first_step_ms(mlflow: str, tags: dict[str, str], timeout: float) -> int:
    """Wall-clock ms of the step-1 loss of the run carrying `tags` (waits for the first flush)."""
    tracking = Tracking(mlflow)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = tracking.find_run(EXPERIMENT, tags)
        if run is not None:
            query = urllib.parse.urlencode({"run_id": run.run_id, "metric_key": "loss"})
            with urllib.request.urlopen(f"{mlflow}/api/2.0/mlflow/metrics/get-history?{query}",
                                        timeout=10) as resp:
                history = json.loads(resp.read()).get("metrics") or []
            if history:
                return min(int(m["timestamp"]) for m in history)
        time.sleep(0.5)
    raise TimeoutError(f"no training step within {timeout}s for {tags}")


def apply_round(cluster: DevCluster, kube: Kube, mlflow: str, steps: int, index: int) -> dict:
    name = f"bench-apply-{index}"
    started = time.time()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(training_run(name, steps)))
    uid = kube.get("tugboat.dev/v1alpha1", "TrainingRun", name, NS)["metadata"]["uid"]
    first = first_step_ms(mlflow, {"tugboat.dev/uid": uid}, timeout=600) / 1000
    shown = None
    while shown is None and time.time() - started < 600:
        st = kube.get("tugboat.dev/v1alpha1", "TrainingRun", name, NS).get("status") or {}
        if st.get("step"):
            shown = time.time()
        time.sleep(0.2)
    config = kube.list("v1", "ConfigMap", NS, label_selector=f"tugboat.dev/trainingrun={name}")[0]
    wait_phase(kube, name, ("Succeeded", "Failed"))
    return {"mode": "apply", "first_step_seconds": first - started,
            "status_shows_step_seconds": (shown or float("nan")) - started,
            "config": json.loads(config["data"]["config.json"])}


def direct_round(ray: RayJobs, mlflow: str, config: dict, workdir: Path, index: int) -> dict:
    cfg = dict(config, uid=str(uuid.uuid4()), name=f"direct-{index}",
               storagePath=str(workdir / f"direct-{index}"))
    path = workdir / f"direct-{index}.json"
    path.write_text(json.dumps(cfg))
    job_id = f"bench-direct-{index}-{uuid.uuid4().hex[:6]}"
    started = time.time()
    env = {"MLFLOW_TRACKING_URI": mlflow, "PATH": f"{hostproc.venv_bin()}:/usr/bin:/bin"}
    ray.submit(Submission(job_id=job_id, entrypoint=f"python -m tugboat_workloads.train --config {path}",
                          runtime_env={"env_vars": env}, metadata={}))
    first = first_step_ms(mlflow, {"tugboat.dev/uid": cfg["uid"]}, timeout=600) / 1000
    while (info := ray.info(job_id)) is not None and info.status not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(1)
    return {"mode": "direct", "first_step_seconds": first - started}


def wait_phase(kube: Kube, name: str, phases: tuple[str, ...], timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = (kube.get("tugboat.dev/v1alpha1", "TrainingRun", name, NS).get("status") or {}).get("phase")
        if phase in phases:
            return phase
        time.sleep(1)
    raise TimeoutError(f"TrainingRun {name} not in {phases} after {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tugboat-bench-apply-"))
    cluster = DevCluster(f"bench-{uuid.uuid4().hex[:6]}", workdir=work / "kwok")
    rounds: list[dict] = []
    plane = op = None
    try:
        cluster.up(log=lambda m: print(m, file=sys.stderr))
        cluster.trust()
        kube = Kube.connect(str(cluster.kubeconfig))
        plane = DataPlane(cluster.kubeconfig, work / "dataplane").start()
        mlflow = plane.info.mlflow_url
        op = OperatorProcess(cluster.kubeconfig, work / "operator.log", "--standalone",
                             "--metrics-port", str(_free_port()), "--health-port", str(_free_port()),
                             "--mlflow-uri", mlflow, "--artifact-root", str(work / "artifacts"))
        op.wait_for_log("tugboat operator: priority")
        cluster.kubectl("apply", "-f", str(ROOT / "examples" / "00-namespaces.yaml"))
        ray = RayJobs(plane.info.ray_dashboard_url)
        for index in range(args.rounds):
            a = apply_round(cluster, kube, mlflow, args.steps, index)
            d = direct_round(ray, mlflow, a.pop("config"), work, index)
            rounds += [a, d]
            print(f"round {index + 1}: apply {a['first_step_seconds']:.1f}s "
                  f"(status {a['status_shows_step_seconds']:.1f}s), direct {d['first_step_seconds']:.1f}s",
                  flush=True)
    finally:
        if op is not None:
            op.stop()
        if plane is not None:
            plane.stop()
        cluster.down()
    apply_s = statistics.median(r["first_step_seconds"] for r in rounds if r["mode"] == "apply")
    shown_s = statistics.median(r["status_shows_step_seconds"] for r in rounds if r["mode"] == "apply")
    direct_s = statistics.median(r["first_step_seconds"] for r in rounds if r["mode"] == "direct")
    medians = {"apply_first_step_seconds": apply_s, "apply_status_shows_step_seconds": shown_s,
               "direct_first_step_seconds": direct_s, "ratio_apply_over_direct": apply_s / direct_s,
               "kubernetes_overhead_seconds": apply_s - direct_s}
    print(f"\nmedians over {args.rounds} interleaved rounds")
    print(f"kubectl apply -> first step     {apply_s:6.1f} s   (status shows it: {shown_s:.1f} s)")
    print(f"Ray Jobs submit -> first step   {direct_s:6.1f} s")
    print(f"ratio apply/direct {medians['ratio_apply_over_direct']:.2f}x "
          f"(Kubernetes path adds {medians['kubernetes_overhead_seconds']:.1f} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "apply-to-first-step", "rounds": args.rounds,
                                   "steps": args.steps, "per_round": rounds, "median": medians},
                                  indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
