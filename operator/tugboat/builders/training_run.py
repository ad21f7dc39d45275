"""TrainingRun -> the workload's config (a ConfigMap) and a KubeRay RayJob. Pure.

The RayJob's worker group lands on the requested pool (nodeSelector, GPU toleration and
`nvidia.com/gpu` limits); the head runs on the CPU pool. Retries are the TrainingRun's own (a
new RayJob per attempt, same checkpoint directory), so the RayJob itself never retries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..api.training_run import TrainingRunSpec
from .naming import child_name, label_value, managed_labels, owner_reference

CONFIG_MOUNT = "/etc/tugboat/train"
GPU = "nvidia.com/gpu"
# KubeRay derives RayCluster and pod names from the RayJob's; keep room for its suffixes.
RAYJOB_NAME_LIMIT = 40
# Pod Security "restricted", which tenant namespaces enforce (by label and by policy). uid 1000 is
# the Ray images' `ray` user; KubeRay copies the Ray container's securityContext into the init
# container it injects into workers, so these two cover every container of the Ray pods.
RUN_AS = 1000


@dataclass(frozen=True)
class TrainingContext:
    """Everything besides the spec that shapes the objects (explicit, never read from env)."""

    owner: dict  # the TrainingRun object (apiVersion, kind, metadata.name/namespace/uid)
    attempt: int
    image: str
    ray_version: str
    pool_label: str
    head_pool: str
    mlflow_tracking_uri: str | None
    storage_path: str
    dataset_roots: tuple[str, ...] = ()  # the workload refuses file:// datasets elsewhere


def ray_job_name(name: str, uid: str, attempt: int) -> str:
    return child_name(name, "ray", uid, attempt, limit=RAYJOB_NAME_LIMIT)


def config_map_name(name: str, uid: str, attempt: int) -> str:
    return child_name(name, "train", uid, attempt)


def build_train_config(spec: TrainingRunSpec, ctx: TrainingContext) -> dict:
    """The JSON the training entrypoint reads (tugboat_workloads.train --config)."""
    meta = ctx.owner["metadata"]
    wire = spec.wire()
    res = spec.resources
    config = {
        "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
        "attempt": ctx.attempt,
        "model": wire["model"], "data": {**wire["data"], "roots": list(ctx.dataset_roots)},
        "training": wire["training"],
        "resources": {"workers": res.workers, "useGpu": res.gpus_per_worker > 0,
                      "cpusPerWorker": res.cpus_per_worker},
        "routerHealth": wire["routerHealth"],
        "storagePath": ctx.storage_path,
    }
    if ctx.mlflow_tracking_uri:
        # Absent, not null: without a tracking server the workload trains untracked.
        config["mlflow"] = {"trackingUri": ctx.mlflow_tracking_uri, "experiment": spec.mlflow.experiment}
    return config


RUN_LABEL = "tugboat.dev/trainingrun"


def run_selector(name: str, attempt: int | None = None) -> str:
    """Label selector of a TrainingRun's objects (of one attempt): the name as its label holds it."""
    selector = f"{RUN_LABEL}={label_value(name)}"
    return selector if attempt is None else f"{selector},tugboat.dev/attempt={attempt}"


def _labels(ctx: TrainingContext) -> dict[str, str]:
    return managed_labels(**{RUN_LABEL: label_value(ctx.owner["metadata"]["name"]),
                             "tugboat.dev/attempt": str(ctx.attempt)})


def build_config_map(spec: TrainingRunSpec, ctx: TrainingContext) -> dict:
    meta = ctx.owner["metadata"]
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": config_map_name(meta["name"], meta["uid"], ctx.attempt),
                     "namespace": meta["namespace"], "labels": _labels(ctx),
                     "ownerReferences": [owner_reference(ctx.owner)]},
        "data": {"config.json": json.dumps(build_train_config(spec, ctx), indent=2, sort_keys=True)},
    }


def _pod_security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}


def _container(name: str, image: str, resources: dict, mounts: list[dict]) -> dict:
    return {"name": name, "image": image, "resources": resources, "volumeMounts": mounts,
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "ports": [{"containerPort": 6379, "name": "gcs"}] if name == "ray-head" else []}


def _worker_group(spec: TrainingRunSpec, ctx: TrainingContext, config_volume: dict) -> dict:
    res = spec.resources
    limits = {"cpu": str(res.cpus_per_worker), "memory": res.memory_per_worker}
    tolerations = []
    if res.gpus_per_worker:
        limits[GPU] = str(res.gpus_per_worker)
        tolerations = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    mounts = [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
              {"name": "dshm", "mountPath": "/dev/shm"}]  # NCCL and torch dataloaders need shm
    return {
        "groupName": "workers", "replicas": res.workers, "minReplicas": res.workers,
        "maxReplicas": res.workers, "rayStartParams": {},
        "template": {
            "metadata": {"labels": _labels(ctx)},
            "spec": {
                "nodeSelector": {ctx.pool_label: res.node_pool},
                "tolerations": tolerations,
                "securityContext": _pod_security(),
                "containers": [_container("ray-worker", ctx.image,
                                          {"limits": limits, "requests": dict(limits)}, mounts)],
                "volumes": [config_volume, {"name": "dshm", "emptyDir": {"medium": "Memory"}}],
            },
        },
    }


def build_ray_job(spec: TrainingRunSpec, ctx: TrainingContext) -> dict:
    meta = ctx.owner["metadata"]
    config_volume = {"name": "config", "configMap": {
        "name": config_map_name(meta["name"], meta["uid"], ctx.attempt)}}
    head_resources = {"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}
    return {
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": ray_job_name(meta["name"], meta["uid"], ctx.attempt),
                     "namespace": meta["namespace"], "labels": _labels(ctx),
                     "ownerReferences": [owner_reference(ctx.owner)]},
        "spec": {
            "entrypoint": f"python -m tugboat_workloads.train --config {CONFIG_MOUNT}/config.json",
            "shutdownAfterJobFinishes": True,
            # The Ray pods hold their GPUs until KubeRay deletes the cluster: free them at once
            # (metrics, checkpoints and the verdict are already in MLflow and our status).
            "ttlSecondsAfterFinished": 5,
            "backoffLimit": 0,
            "rayClusterSpec": {
                "rayVersion": ctx.ray_version,
                "headGroupSpec": {
                    # The head schedules no training work: all of it goes to the GPU workers.
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {
                        "metadata": {"labels": _labels(ctx)},
                        "spec": {
                            "nodeSelector": {ctx.pool_label: ctx.head_pool},
                            "securityContext": _pod_security(),
                            "containers": [_container(
                                "ray-head", ctx.image, head_resources,
                                [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}])],
                            "volumes": [config_volume],
                        },
                    },
                },
                "workerGroupSpecs": [_worker_group(spec, ctx, config_volume)],
            },
        },
    }
