"""The dev data plane's pure rules (no cluster needed): kwok stages, container -> host command,
RayCluster shapes, and the KubeRay RayJob state machine, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tugboat.dev.dataplane.podspec import (
    PodSpecError,
    container_argv,
    container_port,
    expand_vars,
    rewrite_paths,
    with_listen,
)
from tugboat.dev.dataplane.raycluster import cluster_name_for, desired_pods, summarize_cluster, worker_count
from tugboat.dev.dataplane.rayjob_status import Action, Observed, RayInfo, decide
from tugboat.dev.stages import build_stages

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_stages_keep_the_default_set_and_leave_workload_jobs_to_the_data_plane():
    stages = {s["metadata"]["name"]: s for s in build_stages()}
    assert {"node-initialize", "node-heartbeat", "pod-ready", "pod-complete", "pod-delete"} <= set(stages)
    complete = stages["pod-complete"]["spec"]["selector"]["matchExpressions"]
    assert {"key": '.metadata.labels["tugboat.dev/workload"]', "operator": "DoesNotExist"} in complete
    serve = stages["pod-ready-serve"]["spec"]["next"]["statusTemplate"]
    assert "ready: false" in serve and "ready: true" in stages["pod-ready"]["spec"]["next"]["statusTemplate"]


@pytest.mark.parametrize(("text", "expected"), [
    ("--config /etc/app/config.json", "--config /host/app/config.json"),
    ("--config=/etc/app", "--config=/host/app"),
    ("/etc/application/x", "/etc/application/x"),      # a longer name is another path
    ("/x/etc/app/y", "/x/etc/app/y"),                    # not inside a longer path
    ("'/etc/app/sub/../f'", "'/host/app/sub/../f'"),
    ("/etc/app/deep /etc/app", "/host/app/deep /host/app"),
])
def test_mount_paths_are_rewritten_as_whole_path_prefixes(text, expected):
    assert rewrite_paths(text, {"/etc/app/": "/host/app", "/etc/app/deep": "/host/app/deep"}) == expected


def test_container_argv_expands_vars_and_uses_the_venv_python():
    container = {"name": "c", "command": ["python", "-m", "x"], "args": ["--in", "$(DIR)/f", "$$(DIR)"]}
    argv = container_argv(container, {"DIR": "/data"}, {"/data": "/host/data"}, "/venv/bin/python")
    assert argv == ["/venv/bin/python", "-m", "x", "--in", "/host/data/f", "$(DIR)"]
    assert expand_vars("$(UNKNOWN)", {}) == "$(UNKNOWN)"
    with pytest.raises(PodSpecError, match="has no command"):
        container_argv({"name": "c", "args": ["x"]}, {}, {}, "/venv/bin/python")


def test_serving_argv_listens_on_the_pod_ip_and_its_container_port():
    argv = ["python", "-m", "serve", "--port", "9999", "--host=0.0.0.0", "--model", "/m"]
    assert with_listen(argv, "127.7.0.3", 8080) == ["python", "-m", "serve", "--model", "/m",
                                                    "--port", "8080", "--host", "127.7.0.3"]
    ports = [{"name": "metrics", "containerPort": 9090}, {"name": "http", "containerPort": 8080},
             {"name": "dns", "containerPort": 53, "protocol": "UDP"}]
    assert container_port({"name": "c", "ports": ports}) == 8080
    assert container_port({"name": "c", "ports": ports[:1]}) == 9090
    with pytest.raises(PodSpecError, match="declares no TCP containerPort"):
        container_port({"name": "c", "ports": ports[2:]})


def test_worker_counts_and_names_follow_kuberay():
    assert worker_count({"replicas": 5, "minReplicas": 1, "maxReplicas": 3}) == 3
    assert worker_count({"replicas": 0, "minReplicas": 2, "maxReplicas": 3, "numOfHosts": 2}) == 4
    assert worker_count({"replicas": 2, "suspend": True}) == 0
    name = cluster_name_for("x" * 80, "abcde")
    assert len(name) == 63 and name.endswith("-raycluster-abcde")


def cluster(workers: int = 2) -> dict:
    tmpl = {"spec": {"containers": [{"name": "c", "image": "i",
                                     "resources": {"limits": {"cpu": "500m", "nvidia.com/gpu": "1"}}}]}}
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "rc", "namespace": "ns", "uid": "u-1", "generation": 1},
            "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{"name": "h", "image": "i"}]}}},
                     "workerGroupSpecs": [{"groupName": "g", "replicas": workers, "template": tmpl}]}}


def running(pod: dict, ready: bool = True) -> dict:
    return {**pod, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def test_cluster_is_ready_only_when_every_desired_pod_is_running_and_ready():
    rc = cluster()
    pods = desired_pods(rc)
    assert [p["metadata"]["name"] for p in pods] == ["rc-head", "rc-g-worker-0", "rc-g-worker-1"]
    assert pods[1]["metadata"]["labels"] | {"ray.io/node-type": "worker", "ray.io/group": "g"} \
        == pods[1]["metadata"]["labels"]
    assert summarize_cluster(rc, [running(p) for p in pods[:2]], "t")["state"] is None
    unready_worker = [running(p) for p in pods[:2]] + [running(pods[2], ready=False)]
    assert summarize_cluster(rc, unready_worker, "t")["state"] is None
    status = summarize_cluster(rc, [running(p) for p in pods], "t")
    assert status["state"] == "ready" and status["desiredGPU"] == "2" and status["desiredCPU"] == "1"
    assert all(c["reason"] and c["message"] for c in status["conditions"])


def rayjob(status: dict | None = None, **spec) -> dict:
    return {"apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": "train", "namespace": "ns", "uid": "0123456789ab", "generation": 1},
            "spec": {"entrypoint": "python -m x", "rayClusterSpec": {}, **spec}, "status": status or {}}


def observe(rj: dict, cluster_state: str | None = "absent", ray: RayInfo | None = None,
            now: datetime = NOW) -> Observed:
    rc = None if cluster_state == "absent" else {"status": {"state": cluster_state} if cluster_state else {}}
    return Observed(rj, rc, ray, now, "127.0.0.1:8265", "abcde")


def test_rayjob_walks_new_initializing_running_complete():
    d = decide(observe(rayjob()))
    assert d.actions == () and d.status["jobDeploymentStatus"] == "Initializing"
    assert d.status["jobId"] == "train-01234567-g1" and d.status["rayClusterName"] == "train-raycluster-abcde"
    init = d.status
    assert decide(observe(rayjob(init))).actions == (Action.CREATE_CLUSTER,)
    assert decide(observe(rayjob(init), cluster_state=None)).status["jobDeploymentStatus"] == "Initializing"
    run = decide(observe(rayjob(init), cluster_state="ready")).status
    assert run["jobDeploymentStatus"] == "Running" and run["dashboardURL"] == "127.0.0.1:8265"
    assert decide(observe(rayjob(run), "ready")).actions == (Action.SUBMIT,)
    mid = decide(observe(rayjob(run), "ready", RayInfo("RUNNING"))).status
    assert (mid["jobDeploymentStatus"], mid["jobStatus"]) == ("Running", "RUNNING")
    done = decide(observe(rayjob(mid), "ready", RayInfo("SUCCEEDED", "ok", 1000, 2000))).status
    assert (done["jobDeploymentStatus"], done["succeeded"], done["failed"]) == ("Complete", 1, 0)
    assert done["endTime"] == "2026-01-02T03:04:05Z"
    assert done["rayJobInfo"]["endTime"] == "1970-01-01T00:00:02Z"


def test_failed_ray_job_fails_the_rayjob_and_ttl_gates_the_cluster_deletion():
    run = {"jobDeploymentStatus": "Running", "jobId": "j", "rayClusterName": "rc", "failed": 0}
    spec = {"shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 60}
    failed = decide(observe(rayjob(run, **spec), "ready", RayInfo("FAILED", "boom"))).status
    assert (failed["jobDeploymentStatus"], failed["reason"], failed["failed"]) == ("Failed", "AppFailed", 1)
    assert decide(observe(rayjob(failed, **spec), "ready", now=NOW + timedelta(seconds=59))).actions == ()
    later = decide(observe(rayjob(failed, **spec), "ready", now=NOW + timedelta(seconds=60)))
    assert later.actions == (Action.DELETE_CLUSTER,)
    assert decide(observe(rayjob(failed, **spec), "absent", now=NOW + timedelta(hours=1))).actions == ()


def test_suspend_stops_the_job_deletes_the_cluster_and_resume_starts_over():
    run = {"jobDeploymentStatus": "Running", "jobId": "j", "rayClusterName": "rc", "jobStatus": "RUNNING"}
    suspending = decide(observe(rayjob(run, suspend=True), "ready"))
    assert suspending.status["jobDeploymentStatus"] == "Suspending"
    assert suspending.actions == (Action.STOP_JOB,)
    still = decide(observe(rayjob(suspending.status, suspend=True), "ready"))
    assert still.actions == (Action.STOP_JOB, Action.DELETE_CLUSTER)
    suspended = decide(observe(rayjob(suspending.status, suspend=True), "absent")).status
    assert suspended["jobDeploymentStatus"] == "Suspended" and suspended["jobId"] == ""
    assert decide(observe(rayjob(suspended, suspend=False))).status["jobDeploymentStatus"] == ""


def test_active_deadline_fails_a_running_rayjob_and_stops_its_job():
    run = {"jobDeploymentStatus": "Running", "jobId": "j", "rayClusterName": "rc",
           "startTime": "2026-01-02T03:00:00Z"}
    d = decide(observe(rayjob(run, activeDeadlineSeconds=60), "ready", RayInfo("RUNNING")))
    assert (d.status["jobDeploymentStatus"], d.status["reason"]) == ("Failed", "DeadlineExceeded")
    assert d.actions == (Action.STOP_JOB,)
