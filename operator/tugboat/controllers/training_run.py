"""TrainingRun: gather what the pure decision needs (RayJob, pods, pool capacity, MLflow run)."""

from __future__ import annotations

import logging

from ..api.base import API_VERSION
from ..api.kinds import TRAINING_RUN
from ..builders.naming import label_value
from ..builders.training_run import run_selector
from ..kube.client import Kube
from ..reconcile import training_run as tr
from ..reconcile.outcome import Meta
from ..tracking import Tracking, TrackingUnavailable
from .engine import current_status
from .gather import tenant_named
from .settings import Settings

log = logging.getLogger(__name__)
GPU = "nvidia.com/gpu"


def _config(s: Settings) -> tr.Config:
    return tr.Config(pool_label=s.pool_label, head_pool=s.head_pool, image=s.workload_image,
                     ray_version=s.ray_version, mlflow_tracking_uri=s.mlflow_tracking_uri,
                     artifact_root=s.artifact_root,
                     dataset_roots=s.dataset_roots or (f"{s.artifact_root.rstrip('/')}/datasets",))


def _pool(kube: Kube, label: str, pool: str) -> tr.PoolView | None:
    nodes = kube.list("v1", "Node", label_selector=f"{label}={pool}")
    if not nodes:
        return None
    gpus = [int((n.get("status") or {}).get("allocatable", {}).get(GPU, 0)) for n in nodes]
    return tr.PoolView(nodes=len(nodes), max_gpus_per_node=max(gpus), total_gpus=sum(gpus))


def _ray_job(kube: Kube, meta: Meta, attempt: int) -> tr.RayJobView | None:
    name = tr.ray_job_name(meta.name, meta.uid, attempt)
    obj = kube.get_or_none("ray.io/v1", "RayJob", name, meta.namespace)
    if obj is None:
        return None
    st = obj.get("status") or {}
    return tr.RayJobView(name, st.get("jobDeploymentStatus") or "", st.get("jobStatus") or "",
                         st.get("message") or "")


def _unschedulable(kube: Kube, meta: Meta, attempt: int) -> tuple[str, ...]:
    messages = []
    for pod in kube.list("v1", "Pod", meta.namespace, label_selector=run_selector(meta.name, attempt)):
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                messages.append(cond.get("message") or "unschedulable")
    return tuple(sorted(set(messages)))


def _run(settings: Settings, spec: dict, meta: Meta, attempt: int) -> tr.RunView | None:
    if not settings.mlflow_tracking_uri:
        return None
    experiment = (spec.get("mlflow") or {}).get("experiment", "tugboat")
    try:
        run = Tracking(settings.mlflow_tracking_uri).find_run(
            experiment, {"tugboat.dev/uid": meta.uid, "tugboat.dev/attempt": str(attempt)})
    except TrackingUnavailable as exc:
        log.warning("TrainingRun %s/%s: %s", meta.namespace, meta.name, exc)
        return None
    if run is None:
        return None
    return tr.RunView(run.run_id, run.metric_steps.get("loss"), run.metrics, run.tags)


def observe(kube: Kube, obj: dict, s: Settings) -> tr.Observed:
    meta, spec = Meta.of(obj), obj.get("spec") or {}
    status = current_status(TRAINING_RUN, obj)
    attempt = status.attempt or 1
    pool_name = (spec.get("resources") or {}).get("nodePool", "gpu")
    ray_job = _ray_job(kube, meta, attempt)
    # The run exists only once the job started; asking earlier is a wasted round trip.
    started = ray_job is not None and (ray_job.running or ray_job.succeeded or ray_job.failed)
    return tr.Observed(
        meta=meta, spec=spec, status=status, tenant=tenant_named(kube, spec.get("tenant")),
        pool=_pool(kube, s.pool_label, pool_name),
        ray_job=ray_job,
        unschedulable=_unschedulable(kube, meta, attempt),
        run=_run(s, spec, meta, attempt) if started else None,
        config=_config(s))


def training_runs_labelled(kube: Kube, namespace: str, value: str) -> list[str]:
    """Names of the TrainingRuns of `namespace` whose pods carry `value` as their run label (a
    long name's label is shortened with a hash, so it is matched by computing it, not read back)."""
    return [o["metadata"]["name"] for o in kube.list(API_VERSION, TRAINING_RUN.kind, namespace)
            if label_value(o["metadata"]["name"]) == value]
