"""ModelRelease -> its export and signing Jobs. Pure.

Both Jobs carry the label `tugboat.dev/workload` (what they run) and write into the release's
artifact directory under the artifact root, a path every workload pod sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from tugboat_workloads.sign.keys import KEY_MISSING_EXIT

from ..api.model_release import ExportTarget, ModelReleaseSpec
from .naming import child_name, label_value, managed_labels, owner_reference

SIGNING_MOUNT = "/etc/tugboat/signing"
# The Job condition reason of a sign Job stopped by its pod failure policy (the key is missing).
KEY_MISSING_JOB_REASON = "PodFailurePolicy"
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class ReleaseContext:
    owner: dict  # the ModelRelease (apiVersion, kind, metadata.name/namespace/uid)
    image: str
    pool_label: str
    checkpoint: str  # directory of the source checkpoint
    artifact_dir: str
    artifact_pvc: str | None = None
    artifact_root: str = ""
    # The source TrainingRun's storage prefix: the export refuses a checkpoint outside it.
    checkpoint_root: str = ""


RELEASE_LABEL = "tugboat.dev/modelrelease"


def jobs_selector(name: str) -> str:
    """Label selector of a ModelRelease's Jobs (ours: the operator's Job cache answers it): the name
    as its label holds it."""
    return f"app.kubernetes.io/managed-by=tugboat,{RELEASE_LABEL}={label_value(name)}"


def job_name(owner: dict, role: str) -> str:
    meta = owner["metadata"]
    return child_name(meta["name"], role, meta["uid"])


def _job(ctx: ReleaseContext, role: str, pool: str, args: list[str], gpus: int = 0,
         extra_volumes: tuple[tuple[dict, dict], ...] = ()) -> dict:
    meta = ctx.owner["metadata"]
    labels = managed_labels(**{RELEASE_LABEL: label_value(meta["name"]), "tugboat.dev/workload": role})
    limits = {"cpu": "2", "memory": "4Gi"}
    tolerations = []
    if gpus:
        limits[GPU] = str(gpus)
        tolerations = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    volumes = [v for v, _ in extra_volumes]
    mounts = [m for _, m in extra_volumes]
    if ctx.artifact_pvc:
        volumes.append({"name": "artifacts", "persistentVolumeClaim": {"claimName": ctx.artifact_pvc}})
        mounts.append({"name": "artifacts", "mountPath": ctx.artifact_root})
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name(ctx.owner, role), "namespace": meta["namespace"],
                     "labels": labels, "ownerReferences": [owner_reference(ctx.owner)]},
        "spec": {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {ctx.pool_label: pool},
                    "tolerations": tolerations,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": role, "image": ctx.image,
                        "command": ["python", "-m", f"tugboat_workloads.{args[0]}"], "args": args[1:],
                        "resources": {"limits": limits, "requests": dict(limits)},
                        "volumeMounts": mounts,
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}},
                    }],
                    "volumes": volumes,
                },
            },
        },
    }


def build_export_job(spec: ModelReleaseSpec, ctx: ReleaseContext, target: ExportTarget) -> dict:
    ex = spec.export
    args = ["export", "--checkpoint", ctx.checkpoint, "--checkpoint-root", ctx.checkpoint_root,
            "--out", ctx.artifact_dir,
            "--opset", str(ex.opset), "--tolerance", repr(ex.tolerance), "--target", str(target)]
    # Each export job writes the ONNX graph and the report the artifact is judged by: a
    # TensorRT-only release (or its job running last) must not drop the variants asked for.
    if ex.variants:
        args += ["--variants", ",".join(ex.variants), "--min-top1-agreement", repr(ex.min_top1_agreement)]
    if target == ExportTarget.TENSORRT:
        # The engine build needs a GPU: it runs on the GPU pool from the exported ONNX.
        args += ["--trt-precision", ex.tensorrt_precision]
        return _job(ctx, "export-tensorrt", ex.gpu_node_pool, args, gpus=1)
    return _job(ctx, "export", ex.node_pool, args)


def build_sign_job(spec: ModelReleaseSpec, ctx: ReleaseContext) -> dict:
    """The operator never reads the key Secret: the Job mounts it. `optional` lets the pod start
    without it (a kubelet would wait on the mount forever), so the signer can exit with
    KEY_MISSING_EXIT, which fails the Job at once instead of retrying."""
    ref = spec.signing.key_secret_ref
    volume = {"name": "signing-key",
              "secret": {"secretName": ref.name, "defaultMode": 0o400, "optional": True}}
    mount = {"name": "signing-key", "mountPath": SIGNING_MOUNT, "readOnly": True}
    args = ["sign", "--artifact", ctx.artifact_dir, "--private-key", f"{SIGNING_MOUNT}/{ref.key}"]
    job = _job(ctx, "sign", spec.export.node_pool, args, extra_volumes=((volume, mount),))
    job["spec"]["podFailurePolicy"] = {"rules": [{
        "action": "FailJob",
        "onExitCodes": {"containerName": "sign", "operator": "In", "values": [KEY_MISSING_EXIT]}}]}
    return job
