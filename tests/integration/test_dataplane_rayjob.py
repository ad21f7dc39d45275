"""The dev data plane's fake KubeRay: RayJobs become RayClusters and pods the real scheduler places,
and entrypoints run on a real local Ray cluster (plus the local MLflow service it starts)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.integration.helpers import wait_for
from tugboat.dev.dataplane import DataPlane
from tugboat.kube.errors import NotFound

NS = "dp-ray"
RAY = "ray.io/v1"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def plane(cluster, kube, tmp_path_factory):
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    wait_for(lambda: kube.get_or_none("v1", "ServiceAccount", "default", NS), what="default ServiceAccount")
    dp = DataPlane(cluster.kubeconfig, tmp_path_factory.mktemp("dataplane-ray"), ray="start", mlflow_port=0)
    started = time.monotonic()
    dp.start()
    print(f"data plane with Ray head and MLflow up in {time.monotonic() - started:.1f}s")
    yield dp
    dp.stop()


def ray_job(name: str, entrypoint: str, workers: list[dict], head_extra: dict | None = None) -> dict:
    head = {"name": "ray-head", "image": "rayproject/ray:2.60.0", **(head_extra or {}).get("container", {})}
    return {
        "apiVersion": RAY, "kind": "RayJob", "metadata": {"name": name, "namespace": NS},
        "spec": {
            "entrypoint": entrypoint, "shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 0,
            "rayClusterSpec": {
                "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
                    "nodeSelector": {"tugboat.dev/pool": "cpu"}, "containers": [head],
                    "volumes": (head_extra or {}).get("volumes", [])}}},
                "workerGroupSpecs": workers,
            },
        },
    }


def gpu_workers(group: str, replicas: int, gpus: int) -> dict:
    return {"groupName": group, "replicas": replicas, "minReplicas": replicas, "maxReplicas": replicas,
            "rayStartParams": {},
            "template": {"spec": {
                "nodeSelector": {"tugboat.dev/pool": "gpu"}, "tolerations": [GPU_TOLERATION],
                "containers": [{"name": "ray-worker", "image": "rayproject/ray:2.60.0",
                                "resources": {"limits": {"nvidia.com/gpu": str(gpus), "cpu": "1"}}}]}}}


def rayjob_status(kube, name: str) -> dict:
    return kube.get(RAY, "RayJob", name, NS).get("status") or {}


def in_state(kube, name: str, *deployment_states: str):
    """A wait_for predicate: the RayJob's status once jobDeploymentStatus is one of the given."""
    def check():
        status = rayjob_status(kube, name)
        return status if status.get("jobDeploymentStatus") in deployment_states else None
    return check


def pods_of(kube, cluster_name: str) -> list[dict]:
    return kube.list("v1", "Pod", NS, label_selector=f"ray.io/cluster={cluster_name}")


def test_services_json_lists_loopback_mlflow_and_ray(plane):
    services = json.loads((plane.state_dir / "services.json").read_text())
    assert services["mlflow"]["url"].startswith("http://127.0.0.1:")
    assert services["ray"]["dashboardUrl"].startswith("http://127.0.0.1:")
    assert services["ray"]["managed"] is True
    with urllib.request.urlopen(services["mlflow"]["url"] + "/health", timeout=10) as resp:
        assert resp.status == 200


def test_gpu_rayjob_lands_on_gpu_pool_runs_on_ray_and_cleans_up(plane, kube, tmp_path):
    out = tmp_path / "result.txt"
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "job-config", "namespace": NS},
                "data": {"config.json": json.dumps({"out": str(out)})}})
    # The entrypoint reads its config through the head's ConfigMap mount path, which the data
    # plane materializes and rewrites; GREETING comes from the head container's env.
    entrypoint = ("python -c \"import json, os, ray; ray.init(); "
                  "c = json.load(open('/etc/job/config.json')); "
                  "job = ray.get_runtime_context().get_job_id(); "
                  "open(c['out'], 'w').write(os.environ['GREETING'] + ' ' + job)\"")
    head = {"container": {"env": [{"name": "GREETING", "value": "hello-from-head-env"}],
                          "volumeMounts": [{"name": "config", "mountPath": "/etc/job"}]},
            "volumes": [{"name": "config", "configMap": {"name": "job-config"}}]}
    t0 = time.monotonic()
    kube.apply(ray_job("gpu-job", entrypoint, [gpu_workers("gpu", replicas=2, gpus=1)], head))

    status = wait_for(in_state(kube, "gpu-job", "Running"), timeout=60, what="RayJob Running")
    t_running = time.monotonic() - t0
    cluster_name = status["rayClusterName"]
    assert cluster_name.startswith("gpu-job-raycluster-")
    pods = pods_of(kube, cluster_name)
    workers = [p for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "worker"]
    heads = [p for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "head"]
    assert len(workers) == 2 and len(heads) == 1
    nodes = [p["spec"]["nodeName"] for p in workers]
    assert all(n.startswith("gpu-") for n in nodes), nodes
    assert heads[0]["spec"]["nodeName"].startswith("cpu-")
    assert all(p["metadata"]["labels"]["ray.io/group"] == "gpu" for p in workers)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "RayCluster" for p in pods)
    raycluster = kube.get(RAY, "RayCluster", cluster_name, NS)
    assert raycluster["metadata"]["ownerReferences"][0]["name"] == "gpu-job"
    assert raycluster["status"]["state"] == "ready" and raycluster["status"]["desiredGPU"] == "2"

    final = wait_for(in_state(kube, "gpu-job", "Complete", "Failed"), timeout=180, what="RayJob finished")
    t_done = time.monotonic() - t0
    outcome = (final["jobDeploymentStatus"], final["jobStatus"])
    assert outcome == ("Complete", "SUCCEEDED"), final.get("message")
    assert final["succeeded"] == 1 and final["failed"] == 0
    assert final["startTime"] and final["endTime"] and final["dashboardURL"].startswith("127.0.0.1:")
    assert final["jobId"].startswith("gpu-job-")
    greeting, job_id = out.read_text().split()
    assert greeting == "hello-from-head-env" and job_id  # the driver really ran on Ray

    # shutdownAfterJobFinishes: the RayCluster goes, and garbage collection takes its pods.
    def cluster_gone():
        try:
            kube.get(RAY, "RayCluster", cluster_name, NS)
            return False
        except NotFound:
            return True
    wait_for(cluster_gone, timeout=60, what="RayCluster deleted")
    wait_for(lambda: not pods_of(kube, cluster_name), timeout=60, what="Ray pods deleted")
    print(f"RayJob apply -> Running {t_running:.1f}s -> Complete {t_done:.1f}s; "
          f"cluster and pods gone {time.monotonic() - t0:.1f}s")
    assert (plane.state_dir / "logs" / f"{NS}_gpu-job.log").is_file()


def test_rayjob_asking_more_gpus_than_a_node_has_stays_initializing(plane, kube):
    kube.apply(ray_job("too-big", "python -c \"print('never runs')\"", [gpu_workers("big", 1, gpus=3)]))
    status = wait_for(in_state(kube, "too-big", "Initializing"), timeout=60, what="RayJob Initializing")

    def unschedulable_worker():
        for pod in pods_of(kube, status["rayClusterName"]):
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond["type"] == "PodScheduled" and cond["status"] == "False":
                    return pod, cond
        return None
    pod, cond = wait_for(unschedulable_worker, timeout=60, what="an unschedulable worker pod")
    assert pod["metadata"]["labels"]["ray.io/node-type"] == "worker"
    assert pod["status"]["phase"] == "Pending"
    assert "Insufficient nvidia.com/gpu" in cond["message"], cond
    time.sleep(3)  # a few more passes of the loop change nothing
    later = rayjob_status(kube, "too-big")
    assert later["jobDeploymentStatus"] == "Initializing" and not later.get("jobStatus")
    assert later["rayClusterStatus"].get("state") != "ready"
    kube.delete(RAY, "RayJob", "too-big", NS)


def test_failing_entrypoint_fails_the_rayjob_with_its_last_log_line(plane, kube):
    entrypoint = ("python -c \"import sys; print('loading data'); "
                  "print('ValueError: checksum mismatch for shard 3'); sys.exit(3)\"")
    kube.apply(ray_job("failing", entrypoint, []))
    final = wait_for(in_state(kube, "failing", "Complete", "Failed"), timeout=120, what="RayJob finished")
    assert (final["jobDeploymentStatus"], final["jobStatus"]) == ("Failed", "FAILED")
    assert final["reason"] == "AppFailed" and final["failed"] == 1
    assert "exit code 3" in final["message"]
    assert "ValueError: checksum mismatch for shard 3" in final["message"]
