"""ModelRelease decisions: stages in order, resumable, failures final, nothing unverified is Ready."""

from __future__ import annotations

import pytest

from tugboat.api.model_release import ModelReleaseStatus
from tugboat.builders.model_release import job_name
from tugboat.conditions import find
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import Meta
from tugboat_workloads.sign.keys import KEY_MISSING_EXIT

META = Meta(name="rel", namespace="ml", uid="feedfacecafebeef", generation=2)
CFG = mr.Config(image="img", pool_label="tugboat.dev/pool", artifact_root="/art", artifact_pvc=None,
                registry=True)
SPEC = {"modelLine": "moe", "source": {"trainingRun": "moe"}, "export": {"variants": ["int8"]}}
RUN_UID = "0123456789abcdef"
PREFIX = "/art/checkpoints/ml/moe-01234567"
READY_SRC = mr.SourceView(ready=True, failed=False, checkpoint=f"{PREFIX}/ckpt", uid=RUN_UID)
DONE = mr.JobView(succeeded=True, failed=False)
OK = mr.VerifyView(True, "Verified", "5 files match", "d" * 64)


def observed(status=None, **kw):
    base = {"meta": META, "spec": SPEC, "status": status or ModelReleaseStatus(),
            "source": READY_SRC, "jobs": {},
            "trusted_key": True, "config": CFG}
    return mr.Observed(**{**base, **kw})


def cond(out, t):
    c = find(out.status.conditions, t)
    return (c.status, c.reason) if c else None


def test_waits_for_training(now):
    src = mr.SourceView(ready=False, failed=False, checkpoint=None)
    out = mr.decide(observed(source=src), now)
    assert out.status.phase == "Pending" and out.children == ()
    assert cond(out, "Progressing") == ("True", "WaitingForTrainingRun")
    missing = mr.decide(observed(source=None), now)
    assert "TrainingRun moe not found" in missing.status.message
    # The TrainingRun's creation and end wake the release (release-sources fan-out): no poll.
    assert out.requeue_after is None and missing.requeue_after is None


def test_export_job_shape(now):
    out = mr.decide(observed(), now)
    assert out.status.phase == "Exporting"
    (job,) = out.children
    assert job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"tugboat.dev/pool": "cpu"}
    c = pod["containers"][0]
    assert c["command"] == ["python", "-m", "tugboat_workloads.export"]
    assert c["args"][c["args"].index("--variants") + 1] == "int8"
    assert c["args"][c["args"].index("--min-top1-agreement") + 1] == "0.97"  # the variant gate's default
    assert c["args"][c["args"].index("--out") + 1] == "/art/releases/ml/rel-feedface"
    assert job["spec"]["template"]["metadata"]["labels"]["tugboat.dev/workload"] == "export"
    assert out.status.artifact_uri == "file:///art/releases/ml/rel-feedface"


def test_tensorrt_job_goes_to_gpu_pool(now):
    spec = {**SPEC, "export": {"targets": ["onnx", "tensorrt"]}}
    out = mr.decide(observed(spec=spec, jobs={"export": DONE}), now)
    (job,) = out.children
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"tugboat.dev/pool": "gpu"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--target" in pod["containers"][0]["args"]


def test_sign_after_export_mounts_the_key(now):
    out = mr.decide(observed(jobs={"export": DONE}), now)
    assert cond(out, "Exported") == ("True", "Exported")
    assert out.status.phase == "Signing"
    (job,) = out.children
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["secret"]["secretName"] == "tugboat-signing-key"
    assert "/etc/tugboat/signing/private.pem" in pod["containers"][0]["args"]


def test_sign_job_mounts_its_key_and_fails_at_once_without_it(now):
    (job,) = mr.decide(observed(jobs={"export": DONE}), now).children
    pod = job["spec"]["template"]["spec"]
    # Optional: the pod starts without the Secret, so the signer can say what is missing.
    assert pod["volumes"][0]["secret"]["optional"] is True
    (rule,) = job["spec"]["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {"containerName": "sign", "operator": "In", "values": [KEY_MISSING_EXIT]}


def test_missing_signing_key_fails_the_release_with_the_secret_named(now):
    stopped = mr.JobView(succeeded=False, failed=True, reason="PodFailurePolicy",
                         message="Container sign for pod p failed with exit code 3")
    out = mr.decide(observed(jobs={"export": DONE, "sign": stopped}), now)
    assert cond(out, "Signed") == ("False", "SigningKeyNotFound")
    assert out.status.phase == "Failed" and out.children == ()
    assert "Secret tugboat-signing-key with key private.pem not found in" in out.status.message
    again = mr.decide(observed(status=out.status, jobs={"export": DONE, "sign": stopped}), now)
    assert again.status.phase == "Failed" and again.children == (), "final, not retried"


def test_other_sign_failures_stay_sign_failed(now):
    crashed = mr.JobView(succeeded=False, failed=True, reason="BackoffLimitExceeded", message="boom")
    out = mr.decide(observed(jobs={"export": DONE, "sign": crashed}), now)
    assert cond(out, "Signed") == ("False", "SignFailed")


def test_verified_then_registered(now):
    signed = mr.decide(observed(jobs={"export": DONE, "sign": DONE}), now)
    assert signed.status.phase == "Verifying"  # verification not observed yet
    verified = mr.decide(observed(status=signed.status, jobs={"export": DONE, "sign": DONE},
                                  verification=OK), now)
    assert cond(verified, "Verified") == ("True", "Verified")
    assert verified.status.manifest_digest == "d" * 64
    assert verified.status.phase == "Registering"
    (action,) = verified.actions
    assert action.name == "moe" and ("tugboat.dev/release-uid", META.uid) in action.tags
    ready = mr.decide(observed(status=verified.status, jobs={}, registry_version="3"), now)
    assert ready.status.phase == "Ready" and ready.status.registry_version == "3"
    assert cond(ready, "Ready") == ("True", "ReleaseReady")
    assert ready.children == () and ready.actions == ()


@pytest.mark.parametrize("reason", ["DigestMismatch", "UnexpectedFile", "MissingFile", "BadSignature"])
def test_tampering_blocks_the_release_for_good(now, reason):
    bad = mr.VerifyView(False, reason, f"{reason}: model.onnx")
    out = mr.decide(observed(jobs={"export": DONE, "sign": DONE}, verification=bad,
                             status=mr.decide(observed(jobs={"export": DONE, "sign": DONE}), now).status),
                    now)
    assert cond(out, "Verified") == ("False", reason)
    assert out.status.phase == "Failed" and cond(out, "Ready")[0] == "False"
    again = mr.decide(observed(status=out.status, verification=OK), now)
    assert again.status.phase == "Failed" and again.children == () and again.actions == ()


def test_export_failure_is_final(now):
    failed = mr.JobView(succeeded=False, failed=True, message="ParityExceeded")
    out = mr.decide(observed(jobs={"export": failed}), now)
    assert cond(out, "Exported") == ("False", "ExportFailed")
    assert out.status.phase == "Failed" and "ParityExceeded" in out.status.message


def test_a_failure_is_final_for_its_generation_and_a_new_spec_is_judged_afresh(now):
    failed = mr.JobView(succeeded=False, failed=True, message="ParityExceeded")
    out = mr.decide(observed(jobs={"export": failed}), now)
    assert mr.decide(observed(status=out.status, jobs={"export": failed}), now).status.phase == "Failed"
    newer = Meta(**{**META.__dict__, "generation": META.generation + 1})
    retry = mr.decide(observed(meta=newer, status=out.status, jobs={"export": failed}), now)
    assert retry.status.phase == "Pending" and cond(retry, "Progressing") == ("True", "Retrying")
    assert "generation 3: retrying from Exported (failed at generation 2)" in retry.status.message
    owner = {"metadata": {"name": META.name, "uid": META.uid}}
    assert [(kind, name) for _, kind, name, _ in retry.deletions] == [("Job", job_name(owner, "export"))]
    assert find(retry.status.conditions, "Exported") is None
    assert find(retry.status.conditions, "Degraded") is None
    again = mr.decide(observed(meta=newer, status=retry.status, jobs={}), now)
    assert again.status.phase == "Exporting" and [c["kind"] for c in again.children] == ["Job"]


def test_a_verification_failure_is_re_judged_for_a_new_generation_keeping_earlier_stages(now):
    jobs = {"export": DONE, "sign": DONE}
    bad = mr.VerifyView(False, "BadSignature", "BadSignature: manifest")
    out = mr.decide(observed(jobs=jobs, verification=bad,
                             status=mr.decide(observed(jobs=jobs), now).status), now)
    assert out.status.phase == "Failed"
    newer = Meta(**{**META.__dict__, "generation": META.generation + 1})
    retry = mr.decide(observed(meta=newer, status=out.status, jobs=jobs), now)
    assert retry.deletions == () and cond(retry, "Exported") == ("True", "Exported")
    verified = mr.decide(observed(meta=newer, status=retry.status, jobs=jobs, verification=OK), now)
    assert cond(verified, "Verified") == ("True", "Verified")


def test_an_unusable_trusted_key_waits_and_never_fails_the_release(now):
    jobs = {"export": DONE, "sign": DONE}
    out = mr.decide(observed(jobs=jobs, trust_problem="public.pem is empty"), now)
    assert out.status.phase == "Verifying" and cond(out, "Verified") == ("False", "InvalidTrustedKey")
    assert "public.pem is empty" in out.status.message
    fixed = mr.decide(observed(status=out.status, jobs=jobs, verification=OK), now)
    assert cond(fixed, "Verified") == ("True", "Verified")


def test_restart_resumes_without_redoing(now):
    status = mr.decide(observed(jobs={"export": DONE, "sign": DONE}, verification=OK,
                                status=mr.decide(observed(jobs={"export": DONE, "sign": DONE}), now)
                                .status), now).status
    # Jobs were garbage-collected (TTL) after the operator restarted: nothing is re-run.
    out = mr.decide(observed(status=status, jobs={}), now)
    assert out.children == ()
    assert out.status.phase == "Registering"


def test_a_ready_release_outlives_its_training_run(now):
    status = mr.decide(observed(jobs={"export": DONE, "sign": DONE}, verification=OK), now).status
    status = mr.decide(observed(status=status, registry_version="3"), now).status
    assert status.phase == "Ready"
    # The TrainingRun was cleaned up afterwards: the release keeps its artifact and stays Ready.
    out = mr.decide(observed(status=status, source=None, jobs={}), now)
    assert out.status.phase == "Ready" and out.children == ()
    assert out.status.artifact_uri == "file:///art/releases/ml/rel-feedface"


def test_export_job_is_confined_to_the_source_runs_storage(now):
    (job,) = mr.decide(observed(), now).children
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--checkpoint") + 1] == f"{PREFIX}/ckpt"
    assert args[args.index("--checkpoint-root") + 1] == PREFIX


@pytest.mark.parametrize("checkpoint", [
    "/art/checkpoints/other-tenant/moe-01234567/ckpt",  # another tenant's run of the same name
    "/art/checkpoints/ml/moe-99999999/ckpt",  # another run (uid) of the same name
    f"{PREFIX}/../moe-99999999/ckpt",  # climbs out of the prefix
    f"{PREFIX}-evil/ckpt",  # shares the prefix as a string, not as a directory
    "/etc",
    "ckpt",  # relative: resolved against whatever the Job's working directory is
])
def test_a_checkpoint_outside_the_source_runs_storage_fails_the_release(now, checkpoint):
    src = mr.SourceView(ready=True, failed=False, checkpoint=checkpoint, uid=RUN_UID)
    out = mr.decide(observed(source=src), now)
    assert out.children == () and out.status.phase == "Failed"
    assert cond(out, "Exported") == ("False", "UntrustedCheckpoint")
    exported = find(out.status.conditions, "Exported").message
    assert repr(checkpoint) in exported and f"{PREFIX}/" in exported
    again = mr.decide(observed(status=out.status, source=READY_SRC), now)
    assert again.status.phase == "Failed" and again.children == ()  # final for this generation


def test_a_checkpoint_path_is_folded_before_the_job_gets_it(now):
    src = mr.SourceView(ready=True, failed=False, checkpoint=f"{PREFIX}/x/../ckpt/", uid=RUN_UID)
    (job,) = mr.decide(observed(source=src), now).children
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--checkpoint") + 1] == f"{PREFIX}/ckpt"


@pytest.mark.parametrize("name", ["o'brien\"s", "back\\slash"])
def test_a_registry_name_no_search_filter_can_carry_is_invalid(now, name):
    out = mr.decide(observed(spec={**SPEC, "registry": {"modelName": name}}), now)
    assert cond(out, "Valid") == ("False", "InvalidSpec") and out.children == ()
    assert "spec.registry.modelName" in find(out.status.conditions, "Valid").message
