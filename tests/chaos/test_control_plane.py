"""The control plane fails under a working operator: kube-apiserver stopped for 30 s mid-training,
every watch expired (410 Gone: etcd compacted, the API server restarted with a fresh watch cache),
then etcd restarted mid-export. The operator keeps its process, resumes, and loses and repeats nothing."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import conditions, wait_for

from .conftest import (
    CHAOS,
    apply,
    model_release,
    ray_jobs,
    reader,
    release_jobs,
    settled,
    training_run,
)
from .faults import Recorder, assert_no_crash_loop

pytestmark = CHAOS
TR, MR = "chaos-cp", "chaos-cp-v1"
STEPS = 120


@pytest.fixture(scope="module")
def operator(operators):
    # DEBUG: kopf says when it restarts a watch after a 410 ("Restarting the watch-stream").
    return operators("--verbose")


def _step(kube) -> int:
    return (reader(kube, "TrainingRun", TR)().get("status") or {}).get("step", 0)


def _training(kube, at_least: int) -> None:
    wait_for(lambda: _step(kube) >= at_least, timeout=300, interval=0.5, what=f"{TR} at step {at_least}")


def test_api_server_stopped_for_30s_mid_training(cluster, kube, control_plane, operator):
    apply(cluster, training_run(TR, steps=STEPS, interval=20))
    _training(kube, 1)
    before = _step(kube)
    with Recorder(reader(kube, "TrainingRun", TR)) as rec:
        control_plane.stop("kube-apiserver")
        time.sleep(30)
        started = time.monotonic()
        control_plane.start("kube-apiserver")
        print(f"API server started and the other components supervised in {time.monotonic() - started:.1f}s")
        wait_for(lambda: _step(kube) > before or reader(kube, "TrainingRun", TR)()["status"]["phase"]
                 == "Succeeded", timeout=120, interval=0.5, what="status moving after the outage")
        print(f"status moved {time.monotonic() - started:.1f}s after the API server's start")
        done = settled(kube, "TrainingRun", TR, "Succeeded", "Failed", timeout=300)
    st = done["status"]
    assert (st["phase"], st["attempt"], st["step"]) == ("Succeeded", 1, STEPS), st
    assert conditions(done)["Trained"]["status"] == "True"
    assert [j["metadata"]["name"] for j in ray_jobs(kube, TR)] == [st["rayJobName"]]
    rec.assert_nothing_lost()
    assert_no_crash_loop(operator)


def _watch_from(cluster, plural: str, resource_version: str) -> str:
    query = f"watch=true&resourceVersion={resource_version}&timeoutSeconds=1"
    return cluster.kubectl("get", "--raw", f"/apis/tugboat.dev/v1alpha1/{plural}?{query}", check=False,
                           timeout=60).stdout


def test_expired_watches_410_are_relisted(cluster, kube, control_plane, operator):
    """etcd compacted to its current revision and the API server restarted: the operator's watches
    resume from versions that no longer exist and are answered 410 Gone (shown here with a watch of
    our own from such a version); kopf relists. A release created afterwards must be seen and
    start exporting (the next test restarts etcd under that export)."""
    old = reader(kube, "TrainingRun", TR)()["metadata"]["resourceVersion"]
    apply(cluster, {"apiVersion": "v1", "kind": "ConfigMap",  # moves etcd's revision past `old`
                    "metadata": {"name": "chaos-410", "namespace": "ml-platform"}})
    revision = control_plane.compact_etcd()
    control_plane.stop("kube-apiserver")
    control_plane.start("kube-apiserver")
    gone = _watch_from(cluster, "trainingruns", old)
    assert '"code":410' in gone, f"expected 410 Gone from a watch at {old} (compacted at {revision}): {gone}"
    started = time.monotonic()
    apply(cluster, model_release(MR, TR))
    settled(kube, "ModelRelease", MR, "Exporting", timeout=120)
    print(f"release Exporting {time.monotonic() - started:.1f}s after the 410s; "
          f"watch restarts logged: {operator.output().count('Restarting the watch-stream')}")
    assert len(ray_jobs(kube, TR)) == 1
    assert_no_crash_loop(operator)


def test_etcd_restarted_mid_export(cluster, kube, control_plane, operator):
    read = reader(kube, "ModelRelease", MR)
    print(f"etcd killed with {MR} {read()['status']['phase']}")
    with Recorder(read) as rec:
        control_plane.stop("etcd")
        time.sleep(5)
        control_plane.start("etcd")
        done = settled(kube, "ModelRelease", MR, "Ready", "Failed", timeout=300)
    assert done["status"]["phase"] == "Ready", done["status"]
    for stage in ("Exported", "Signed", "Verified", "Registered", "Ready"):
        assert conditions(done)[stage]["status"] == "True", stage
    assert {r: len(u) for r, u in release_jobs(kube, MR).items()} == {"export": 1, "sign": 1}
    training = reader(kube, "TrainingRun", TR)()["status"]
    assert (training["phase"], training["attempt"], training["step"]) == ("Succeeded", 1, STEPS)
    assert [j["metadata"]["name"] for j in ray_jobs(kube, TR)] == [training["rayJobName"]]
    rec.assert_nothing_lost()
    assert_no_crash_loop(operator)
