"""SIGKILL the operator at every phase of a TrainingRun, then of a ModelRelease built from it, and
start it again each time: one RayJob, one export Job and one sign Job, one registry version; steps
never go back, no condition disappears, and the last operator is not crash-looping."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from tests.integration.helpers import conditions

from .conftest import (
    CHAOS,
    apply,
    model_release,
    ray_jobs,
    reader,
    release_jobs,
    training_run,
)
from .faults import Recorder, assert_no_crash_loop
from .killing import in_order, kill_at_each_point

pytestmark = CHAOS
TR, MR = "chaos-kill", "chaos-kill-v1"
TR_PHASES = ["Pending", "Starting", "Running", "Succeeded"]
MR_PHASES = ["Pending", "Exporting", "Signing", "Verifying", "Registering", "Ready"]


def _training_point(obj: dict) -> str | None:
    st = obj.get("status") or {}
    if st.get("phase") == "Running" and st.get("step"):
        return "Running(mid-training)"
    return st.get("phase")


def test_training_run_survives_a_kill_at_every_phase(cluster, kube, operators):
    apply(cluster, training_run(TR, steps=60, interval=20))
    with Recorder(reader(kube, "TrainingRun", TR)) as rec:
        op, killed = kill_at_each_point(operators, reader(kube, "TrainingRun", TR), _training_point,
                                        ("Succeeded", "Failed"))
        time.sleep(10)  # the restarted operator's first passes: they must redo nothing
    print(f"killed at {killed}; phases {rec.phases()}")
    assert {"Running(mid-training)", "Succeeded"} <= set(killed), killed
    obj = reader(kube, "TrainingRun", TR)()
    st = obj["status"]
    assert (st["phase"], st["attempt"], st["step"]) == ("Succeeded", 1, 60), st
    assert conditions(obj)["Trained"]["status"] == "True"
    jobs = ray_jobs(kube, TR)
    assert [j["metadata"]["name"] for j in jobs] == [st["rayJobName"]], "one RayJob for the one attempt"
    assert in_order(rec.phases(), TR_PHASES), rec.phases()
    rec.assert_nothing_lost()
    assert_no_crash_loop(op)


def _registry_versions(mlflow_url: str, model: str) -> list[str]:
    query = urllib.parse.urlencode({"filter": f"name='{model}'", "max_results": 100})
    with urllib.request.urlopen(f"{mlflow_url}/api/2.0/mlflow/model-versions/search?{query}",
                                timeout=30) as resp:
        return [mv["version"] for mv in json.loads(resp.read()).get("model_versions") or []]


def test_model_release_survives_a_kill_at_every_phase(cluster, kube, operators, dataplane):
    doc = model_release(MR, TR)
    apply(cluster, doc)
    with Recorder(reader(kube, "ModelRelease", MR)) as rec:
        op, killed = kill_at_each_point(operators, reader(kube, "ModelRelease", MR),
                                        lambda o: (o.get("status") or {}).get("phase"), ("Ready", "Failed"))
        time.sleep(10)
    print(f"killed at {killed}; phases {rec.phases()}")
    assert {"Exporting", "Signing", "Ready"} <= set(killed), killed
    obj = reader(kube, "ModelRelease", MR)()
    st = obj["status"]
    assert st["phase"] == "Ready", st
    for stage in ("Exported", "Signed", "Verified", "Registered", "Ready"):
        assert conditions(obj)[stage]["status"] == "True", stage
    jobs = release_jobs(kube, MR)
    assert {role: len(uids) for role, uids in jobs.items()} == {"export": 1, "sign": 1}, jobs
    assert _registry_versions(dataplane.info.mlflow_url, doc["spec"]["modelLine"]) == [st["registryVersion"]]
    assert in_order(rec.phases(), MR_PHASES), rec.phases()
    rec.assert_nothing_lost()
    assert_no_crash_loop(op)
