"""ModelRelease -> its export and signing Jobs. Pure.

Both Jobs carry the label `tugboat.dev/workload` (what they run) and write into the release's
artifact directory under the artifact root, a path every workload pod sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api.model_release import ExportTarget, ModelReleaseSpec
from .naming import child_name, managed_labels, owner_reference

SIGNING_MOUNT = "/etc/tugboat/signing"
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class ReleaseContext:
    owner: dict  # the ModelRelease (apiVersion, kind, metadata.name/namespace/uid)
    image: str
    pool_label: str
    checkpoint: str  # directory of the source checkpoint
    checkpoint_root: str  # the source TrainingRun's storage prefix: the export refuses anything outside it
    artifact_dir: str
    artifact_pvc: str | None = None
    artifact_root: str = ""


def job_name(owner: dict, role: str) -> str:
    meta = owner["metadata"]
    return child_name(meta["name"], role, meta["uid"])


def _job(ctx: ReleaseContext, role: str, pool: str, args: list[str], gpus: int = 0,
         extra_volumes: tuple[tuple[dict, dict], ...] = ()) -> dict:
    meta = ctx.owner["metadata"]
    labels = managed_labels(**{"tugboat.dev/modelrelease": meta["name"], "tugboat.dev/workload": role})
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
    if target == ExportTarget.ONNX and ex.variants:
        args += ["--variants", ",".join(ex.variants), "--min-top1-agreement", repr(ex.min_top1_agreement)]
    if target == ExportTarget.TENSORRT:
        # The engine build needs a GPU: it runs on the GPU pool from the exported ONNX.
        args += ["--trt-precision", ex.tensorrt_precision]
        return _job(ctx, "export-tensorrt", ex.gpu_node_pool, args, gpus=1)
    return _job(ctx, "export", ex.node_pool, args)


def build_sign_job(spec: ModelReleaseSpec, ctx: ReleaseContext) -> dict:
    ref = spec.signing.key_secret_ref
    volume = {"name": "signing-key", "secret": {"secretName": ref.name, "defaultMode": 0o400}}
    mount = {"name": "signing-key", "mountPath": SIGNING_MOUNT, "readOnly": True}
    args = ["sign", "--artifact", ctx.artifact_dir, "--private-key", f"{SIGNING_MOUNT}/{ref.key}"]
    return _job(ctx, "sign", spec.export.node_pool, args, extra_volumes=((volume, mount),))
