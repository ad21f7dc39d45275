"""TrainingRun decisions, table by table: RayJob shape, mirroring, retries, router-health SLOs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tugboat.api.training_run import TrainingRunStatus
from tugboat.builders.training_run import RAYJOB_NAME_LIMIT, ray_job_name
from tugboat.conditions import find
from tugboat.reconcile import training_run as tr
from tugboat.reconcile.outcome import Meta

SHA = "b" * 64
POOL = tr.PoolView(nodes=2, max_gpus_per_node=2, total_gpus=4)
CFG = tr.Config("tugboat.dev/pool", "cpu", "img:1", "2.60.0", "http://127.0.0.1:5000", "/art",
                dataset_roots=("/art/datasets", "/data/shared/"))
META = Meta(name="moe", namespace="ml", uid="0123456789abcdef", generation=1)
HEALTHY = {"loss": 0.3, "expert_load_imbalance": 1.2, "router_entropy": 1.5, "tokens_per_second": 9e3}


def spec(**kw):
    base = {"data": {"uri": "builtin://arithmetic", "sha256": SHA},
            "resources": {"workers": 2, "gpusPerWorker": 1, "nodePool": "gpu"}}
    return {**base, **kw}


def observed(status=None, **kw):
    fields = {"meta": META, "spec": spec(), "status": status or TrainingRunStatus(), "tenant": None,
              "pool": POOL, "config": CFG, **kw}
    return tr.Observed(**fields)


def cond(out, type_):
    c = find(out.status.conditions, type_)
    return (c.status, c.reason) if c else None


def ray_job(attempt=1, dep="Running", job="RUNNING", message=""):
    return tr.RayJobView(ray_job_name(META.name, META.uid, attempt), dep, job, message)


def children(out):
    return {c["kind"]: c for c in out.children}


def test_first_pass_desires_config_and_rayjob(now):
    out = tr.decide(observed(), now)
    kids = children(out)
    assert set(kids) == {"ConfigMap", "RayJob"}
    job = kids["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["shutdownAfterJobFinishes"] is True
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head["nodeSelector"] == {"tugboat.dev/pool": "cpu"}
    group = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["replicas"] == 2
    pod = group["template"]["spec"]
    assert pod["nodeSelector"] == {"tugboat.dev/pool": "gpu"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod["volumes"])
    assert "tugboat_workloads.train --config /etc/tugboat/train/config.json" in job["spec"]["entrypoint"]
    for kid in kids.values():
        assert kid["metadata"]["ownerReferences"][0]["uid"] == META.uid
    config = json.loads(kids["ConfigMap"]["data"]["config.json"])
    assert config["attempt"] == 1 and config["resources"]["useGpu"] is True
    assert config["storagePath"] == "/art/checkpoints/ml/moe-01234567"
    assert config["mlflow"] == {"trackingUri": "http://127.0.0.1:5000", "experiment": "tugboat"}
    assert out.status.phase == "Starting" and out.status.attempt == 1
    assert out.requeue_after is None  # the RayJob's and its pods' watch events wake the run


def test_only_a_running_run_polls_and_at_the_live_rate(now):
    """MLflow sends no events: a running run looks again every LIVE_POLL_SECONDS; one starting or
    waiting for capacity is woken by RayJob and pod events instead of a timer per run."""
    running = tr.decide(observed(ray_job=ray_job()), now)
    assert running.status.phase == "Running" and running.requeue_after == tr.LIVE_POLL_SECONDS
    waiting = tr.decide(observed(ray_job=ray_job(dep="Initializing", job=""),
                                 unschedulable=("0/4 nodes are available",)), now)
    assert waiting.status.phase == "Pending" and waiting.requeue_after is None
    starting = tr.decide(observed(ray_job=ray_job(dep="Initializing", job="")), now)
    assert starting.status.phase == "Starting" and starting.requeue_after is None


def test_names_fit_limits():
    long = "x" * 80
    name = ray_job_name(long, "uid", 3)
    assert len(name) <= RAYJOB_NAME_LIMIT and name.startswith("xxx") and "-ray-" in name
    assert name != ray_job_name(long, "uid", 4)


@pytest.mark.parametrize(("pool", "resources", "reason"), [
    (None, {"workers": 1, "gpusPerWorker": 1, "nodePool": "tpu"}, "UnknownNodePool"),
    (POOL, {"workers": 1, "gpusPerWorker": 8, "nodePool": "gpu"}, "InsufficientCapacity"),
    (POOL, {"workers": 8, "gpusPerWorker": 1, "nodePool": "gpu"}, "InsufficientCapacity"),
])
def test_impossible_placement_is_invalid(now, pool, resources, reason):
    out = tr.decide(observed(spec=spec(resources=resources), pool=pool), now)
    assert cond(out, "Valid") == ("False", reason)
    assert "spec.resources" in find(out.status.conditions, "Valid").message
    assert out.children == ()


def test_unschedulable_pods_say_why(now):
    msg = "0/4 nodes are available: 2 Insufficient nvidia.com/gpu"
    out = tr.decide(observed(ray_job=ray_job(dep="Initializing", job=""), unschedulable=(msg,)), now)
    assert cond(out, "Scheduled") == ("False", "WaitingForCapacity")
    assert out.status.phase == "Pending"
    assert "Insufficient nvidia.com/gpu" in out.status.message


def test_running_mirrors_metrics(now):
    run = tr.RunView("r1", 120, {**HEALTHY, "loss": 0.5}, {"tugboat.dev/checkpoint": "/art/c/120"})
    out = tr.decide(observed(ray_job=ray_job(), run=run), now)
    assert out.status.phase == "Running"
    assert cond(out, "Scheduled") == ("True", "Scheduled")
    assert out.status.step == 120 and out.status.metrics.loss == 0.5
    assert out.status.checkpoint == "/art/c/120" and out.status.mlflow_run_id == "r1"
    assert "step 120/200" in out.status.message


def test_success_checks_router_health(now):
    run = tr.RunView("r1", 200, HEALTHY, {})
    out = tr.decide(observed(ray_job=ray_job(dep="Complete", job="SUCCEEDED"), run=run), now)
    assert out.status.phase == "Succeeded"
    assert cond(out, "Trained") == ("True", "TrainingSucceeded")
    assert cond(out, "Ready") == ("True", "TrainingSucceeded")
    assert out.children == ()
    assert out.status.completion_time == now


def test_unhealthy_router_fails_without_retry(now):
    run = tr.RunView("r1", 200, {**HEALTHY, "expert_load_imbalance": 2.4}, {})
    out = tr.decide(observed(ray_job=ray_job(dep="Complete", job="SUCCEEDED"), run=run), now)
    assert out.status.phase == "Failed"
    assert cond(out, "Trained") == ("False", "RouterUnhealthy")
    assert "imbalance 2.40" in out.status.message


def test_workload_verdict_on_router_health_wins(now):
    run = tr.RunView("r1", 200, HEALTHY, {"tugboat.dev/router-healthy": "false"})
    out = tr.decide(observed(ray_job=ray_job(dep="Complete", job="SUCCEEDED"), run=run), now)
    assert cond(out, "Trained") == ("False", "RouterUnhealthy")


def test_success_waits_for_mlflow_run(now):
    out = tr.decide(observed(ray_job=ray_job(dep="Complete", job="SUCCEEDED")), now)
    assert out.status.phase == "Running"
    assert cond(out, "Progressing") == ("True", "WaitingForMetrics")


def test_failure_schedules_retry_with_backoff(now):
    out = tr.decide(observed(ray_job=ray_job(dep="Failed", job="FAILED", message="worker died")), now)
    assert out.status.phase == "Retrying"
    assert out.status.next_retry_time == now + timedelta(seconds=30)
    assert out.requeue_after == 30.0
    assert [e.reason for e in out.events] == ["AttemptFailed"]
    assert out.children == ()


def test_retry_starts_next_attempt_in_same_checkpoint_dir(now):
    waiting = tr.decide(observed(ray_job=ray_job(dep="Failed", job="FAILED")), now).status
    early = tr.decide(observed(status=waiting), now + timedelta(seconds=10))
    assert early.children == () and early.requeue_after == pytest.approx(20.0)
    later = tr.decide(observed(status=waiting, ray_job=ray_job(dep="Failed", job="FAILED")),
                      now + timedelta(seconds=31))
    assert later.status.attempt == 2 and later.status.next_retry_time is None
    kids = children(later)
    assert kids["RayJob"]["metadata"]["name"] == ray_job_name(META.name, META.uid, 2)
    config = json.loads(kids["ConfigMap"]["data"]["config.json"])
    assert config["attempt"] == 2 and config["storagePath"] == "/art/checkpoints/ml/moe-01234567"


def test_backoff_doubles(now):
    status = TrainingRunStatus(attempt=2)
    out = tr.decide(observed(status=status, ray_job=ray_job(2, dep="Failed", job="FAILED")), now)
    assert out.status.next_retry_time == now + timedelta(seconds=60)


def test_last_attempt_fails_for_good(now):
    status = TrainingRunStatus(attempt=3)
    out = tr.decide(observed(status=status, ray_job=ray_job(3, dep="Failed", job="FAILED")), now)
    assert out.status.phase == "Failed"
    assert cond(out, "Trained") == ("False", "AttemptsExhausted")
    assert cond(out, "Degraded") == ("True", "AttemptsExhausted")


def test_checksum_mismatch_is_not_retried(now):
    run = tr.RunView("r1", None, {}, {"tugboat.dev/result": "DataChecksumMismatch"})
    out = tr.decide(observed(ray_job=ray_job(dep="Failed", job="FAILED"), run=run), now)
    assert out.status.phase == "Failed"
    assert cond(out, "Trained") == ("False", "DataChecksumMismatch")


def test_terminal_is_terminal(now):
    done = tr.decide(observed(ray_job=ray_job(dep="Complete", job="SUCCEEDED"),
                              run=tr.RunView("r", 200, HEALTHY, {})), now).status
    again = tr.decide(observed(status=done), now + timedelta(hours=1))
    assert again.children == () and again.status == done and again.events == ()


def test_suspend_stops_the_rayjob(now):
    out = tr.decide(observed(spec=spec(suspend=True), ray_job=ray_job()), now)
    assert out.status.phase == "Suspended"
    assert out.deletions == (("ray.io/v1", "RayJob", ray_job().name, "ml"),)
    assert out.children == ()


def test_ray_pods_meet_pod_security_restricted(now):
    # Tenant namespaces enforce it; KubeRay copies the Ray container's securityContext into the
    # init container it injects, so the pod and its one container are all there is to set.
    job = children(tr.decide(observed(), now))["RayJob"]["spec"]["rayClusterSpec"]
    for template in (job["headGroupSpec"]["template"], job["workerGroupSpecs"][0]["template"]):
        pod = template["spec"]
        assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000,
                                          "seccompProfile": {"type": "RuntimeDefault"}}
        for c in pod["containers"]:
            assert c["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}}


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "file:///art/datasets/../../etc/passwd",
                                 "file:///art/datasets-evil/t.txt", "file:///art/checkpoints/ml/x/model.pt",
                                 "file://host/art/datasets/t.txt", "file:///art/datasets/%2e%2e/x/t.txt"])
def test_a_file_dataset_outside_the_allowed_roots_is_invalid(now, uri):
    out = tr.decide(observed(spec=spec(data={"uri": uri, "sha256": SHA})), now)
    assert cond(out, "Valid") == ("False", "InvalidSpec") and out.children == ()
    message = find(out.status.conditions, "Valid").message
    assert uri in message and ("/art/datasets/, /data/shared/" in message or "absolute" in message)
    none_allowed = tr.Config(*[getattr(CFG, f) for f in ("pool_label", "head_pool", "image", "ray_version",
                                                          "mlflow_tracking_uri", "artifact_root")])
    refused = tr.decide(observed(spec=spec(data={"uri": uri, "sha256": SHA}), config=none_allowed), now)
    assert cond(refused, "Valid") == ("False", "InvalidSpec")


@pytest.mark.parametrize("uri", ["file:///art/datasets/t.txt", "file:///data/shared/a/b.txt"])
def test_a_file_dataset_under_an_allowed_root_trains_and_the_workload_gets_the_roots(now, uri):
    out = tr.decide(observed(spec=spec(data={"uri": uri, "sha256": SHA})), now)
    assert cond(out, "Valid") == ("True", "SpecValid")
    (cm,) = [k for k in out.children if k["kind"] == "ConfigMap"]
    data = json.loads(cm["data"]["config.json"])["data"]
    assert data == {"uri": uri, "sha256": SHA, "roots": ["/art/datasets", "/data/shared/"]}


@pytest.mark.parametrize("uri", ["builtin://[", "file://[::1/x", "https://a]/b"])
def test_a_uri_the_url_parser_refuses_is_invalid_not_a_crash(now, uri):
    out = tr.decide(observed(spec=spec(data={"uri": uri, "sha256": SHA})), now)
    assert cond(out, "Valid") == ("False", "InvalidSpec") and out.children == ()
    assert f"{uri} is not a valid URI" in find(out.status.conditions, "Valid").message
