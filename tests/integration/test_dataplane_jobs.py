"""The dev data plane runs labelled workload Job pods on the host; the real Job controller judges them."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import host_dataplane
from tests.integration.helpers import wait_for
from tugboat.api.model_release import ModelReleaseSpec
from tugboat.builders.model_release import KEY_MISSING_JOB_REASON, ReleaseContext, build_sign_job
from tugboat_workloads.sign.keys import KEY_MISSING_EXIT

NS = "dp-jobs"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def plane(cluster, kube, tmp_path_factory):
    yield from host_dataplane(cluster, kube, tmp_path_factory, NS)


def job(name: str, command: list[str], args: list[str], *, labelled: bool = True, volumes=(), mounts=(),
        env=()) -> dict:
    labels = {"tugboat.dev/workload": "export"} if labelled else {}
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "volumes": list(volumes), "containers": [{
                "name": "main", "image": "tugboat/workloads:dev", "command": command, "args": args,
                "env": list(env), "volumeMounts": list(mounts)}]}}},
    }


def job_finished(kube, name: str):
    def check():
        conds = {c["type"]: c for c in (kube.get("batch/v1", "Job", name, NS).get("status") or {}).get(
            "conditions") or [] if c["status"] == "True"}
        return conds.get("Complete") or conds.get("Failed")
    return check


def only_pod(kube, job_name: str) -> dict:
    pods = kube.list("v1", "Pod", NS, label_selector=f"job-name={job_name}")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_labelled_job_runs_its_command_on_the_host_and_completes(plane, kube, tmp_path):
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "data": {"settings.txt": "opset=18"},
                "metadata": {"name": "export-config", "namespace": NS}})
    script = ("import os, sys; settings = open('/etc/export/settings.txt').read(); "
              "open(os.path.join(sys.argv[1], 'done.txt'), 'w').write(settings + ' ' + os.environ['MODEL'] "
              "+ ' ' + sys.executable); print('exported', settings)")
    t0 = time.monotonic()
    kube.apply(job("export-ok", ["python", "-c"], [script, "/artifacts"],
                   volumes=[{"name": "config", "configMap": {"name": "export-config"}},
                            {"name": "artifacts", "hostPath": {"path": str(tmp_path)}}],
                   mounts=[{"name": "config", "mountPath": "/etc/export"},
                           {"name": "artifacts", "mountPath": "/artifacts"}],
                   env=[{"name": "MODEL", "value": "moe-tiny"}]))
    cond = wait_for(job_finished(kube, "export-ok"), timeout=90, what="Job finished")
    print(f"labelled Job apply -> Complete {time.monotonic() - t0:.1f}s")
    assert cond["type"] == "Complete", cond
    settings, model, python = (tmp_path / "done.txt").read_text().split()
    assert (settings, model) == ("opset=18", "moe-tiny")
    assert python.endswith("/bin/python") and "venv" in python  # the venv's interpreter, not the host's
    terminated = only_pod(kube, "export-ok")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert terminated["message"] == "exported opset=18"


def test_failing_command_fails_the_job_with_the_exit_code_and_last_line(plane, kube):
    script = "import sys; print('step 1 ok'); print('onnx parity 12.0 > tolerance 1e-4'); sys.exit(3)"
    kube.apply(job("export-bad", ["python", "-c"], [script]))
    cond = wait_for(job_finished(kube, "export-bad"), timeout=90, what="Job finished")
    assert cond["type"] == "Failed" and cond["reason"] == "BackoffLimitExceeded", cond
    pod = only_pod(kube, "export-bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert terminated["message"] == "onnx parity 12.0 > tolerance 1e-4"
    log = plane.state_dir / "logs" / f"{NS}_{pod['metadata']['name']}.log"
    assert log.read_text().startswith("step 1 ok")


def test_unlabelled_job_keeps_kwoks_fake_completion(plane, kube, tmp_path):
    marker = tmp_path / "must-not-exist"
    script = f"open('{marker}', 'w').write('ran'); import sys; sys.exit(1)"
    kube.apply(job("plain", ["python", "-c"], [script], labelled=False))
    cond = wait_for(job_finished(kube, "plain"), timeout=60, what="Job finished")
    assert cond["type"] == "Complete"  # kwok says so, without running anything
    assert not marker.exists()


def test_pod_without_a_command_fails_naming_the_problem(plane, kube):
    manifest = job("no-command", [], [])
    del manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    kube.apply(manifest)
    cond = wait_for(job_finished(kube, "no-command"), timeout=60, what="Job finished")
    assert cond["type"] == "Failed"
    terminated = only_pod(kube, "no-command")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 128 and "has no command" in terminated["message"]


def test_sign_job_without_its_key_secret_fails_at_once_with_the_pod_failure_policy(plane, kube, tmp_path):
    """The operator reads no Secrets: the real sign Job mounts its own, and a missing one fails the
    Job at once (no retry) with the reason the release reports as SigningKeyNotFound."""
    spec = ModelReleaseSpec.model_validate({"modelLine": "moe", "source": {"trainingRun": "moe"},
                                            "signing": {"method": "Key", "keySecretRef": {"name": "absent"}}})
    owner = {"apiVersion": "tugboat.dev/v1alpha1", "kind": "ModelRelease",
             "metadata": {"name": "keyless", "namespace": NS, "uid": "0123456789abcdef"}}
    ctx = ReleaseContext(owner, image="tugboat/workloads:dev", pool_label="tugboat.dev/pool",
                         checkpoint=str(tmp_path / "ckpt"), artifact_dir=str(tmp_path / "art"))
    manifest = build_sign_job(spec, ctx)
    del manifest["metadata"]["ownerReferences"]  # no ModelRelease here: the collector would take it
    kube.apply(manifest)
    name = manifest["metadata"]["name"]
    cond = wait_for(job_finished(kube, name), timeout=90, what="sign Job finished")
    assert cond["type"] == "Failed" and cond["reason"] == KEY_MISSING_JOB_REASON, cond
    assert f"exit code {KEY_MISSING_EXIT}" in cond["message"], cond
    said = only_pod(kube, name)["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    # (The data plane mounts the Secret's directory under its own state directory.)
    assert said.startswith("signing key ") and "private.pem not found" in said, said
