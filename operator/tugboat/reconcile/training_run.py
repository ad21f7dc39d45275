"""TrainingRun: from a valid spec to a trained, tracked checkpoint. Pure.

Steps: validate (schema, tenant, pool) -> stop if terminal or suspended -> wait out a retry
back-off -> desire this attempt's ConfigMap + RayJob -> mirror the RayJob into conditions ->
on success check router health against the SLOs; on failure retry (resuming from the last
checkpoint, which the workload finds in the same storage path) or fail for good.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..api.base import API_VERSION, ConditionStatus
from ..api.kinds import TRAINING_RUN
from ..api.training_run import TrainingMetrics, TrainingRunSpec, TrainingRunStatus
from ..builders.training_run import TrainingContext, build_config_map, build_ray_job, ray_job_name
from ..conditions import find
from ..reasons import Reason
from .outcome import EventIntent, Meta, Outcome, phase_event, set_conditions
from .provenance import checkpoint_prefix, dataset_refusal
from .tenancy import TenantView, named_tenant, node_pool_allowed
from .validity import validate

POLL_SECONDS = 5.0
# Live step and loss are what people watch `kubectl get tr -w` for; MLflow sends no events, so a
# running run looks again this often (and only a running one: the rest are woken by watches).
LIVE_POLL_SECONDS = 2.0
# Failures that another attempt cannot fix: the same input gives the same result.
FINAL_REASONS = {Reason.DATA_CHECKSUM_MISMATCH, "InvalidConfig", Reason.ROUTER_UNHEALTHY}
_REASON_IN_TEXT = re.compile(r"\b(DataChecksumMismatch|NonFiniteLoss|RouterUnhealthy|InvalidConfig|"
                             r"WorkerFailure)\b")


@dataclass(frozen=True)
class PoolView:
    nodes: int
    max_gpus_per_node: int
    total_gpus: int


@dataclass(frozen=True)
class RayJobView:
    name: str
    deployment_status: str
    job_status: str
    message: str

    @property
    def succeeded(self) -> bool:
        return self.deployment_status == "Complete" and self.job_status == "SUCCEEDED"

    @property
    def failed(self) -> bool:
        return self.deployment_status == "Failed" or self.job_status in ("FAILED", "STOPPED")

    @property
    def running(self) -> bool:
        return self.deployment_status == "Running"


@dataclass(frozen=True)
class RunView:
    """The attempt's MLflow run, as the operator reads it."""

    run_id: str
    step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    pool_label: str
    head_pool: str
    image: str
    ray_version: str
    mlflow_tracking_uri: str | None
    artifact_root: str
    dataset_roots: tuple[str, ...] = ()  # where file:// datasets may live (none: no file:// at all)


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: TrainingRunStatus
    tenant: TenantView | None  # the Tenant named by spec.tenant, if it exists
    pool: PoolView | None = None  # None: no node carries the pool label
    ray_job: RayJobView | None = None  # the RayJob of status.attempt, if it exists
    unschedulable: tuple[str, ...] = ()  # scheduler messages of this attempt's pending pods
    run: RunView | None = None
    config: Config | None = None


def _pool_checks(observed: Observed):
    def exists(spec: TrainingRunSpec):
        if observed.pool is None:
            return (Reason.UNKNOWN_NODE_POOL,
                    f"spec.resources.nodePool: no node is labelled with pool {spec.resources.node_pool}")
        return None

    def fits(spec: TrainingRunSpec):
        res, pool = spec.resources, observed.pool
        need = res.workers * res.gpus_per_worker
        if res.gpus_per_worker > pool.max_gpus_per_node or need > pool.total_gpus:
            return (Reason.INSUFFICIENT_CAPACITY,
                    f"spec.resources: {res.workers} workers x {res.gpus_per_worker} GPUs can never fit "
                    f"pool {res.node_pool} ({pool.nodes} nodes, at most {pool.max_gpus_per_node} GPUs "
                    f"per node, {pool.total_gpus} in total)")
        return None
    return [exists, fits]


def _dataset_allowed(config: Config | None):
    def check(spec: TrainingRunSpec):
        why = dataset_refusal(spec.data.uri, config.dataset_roots if config else ())
        return None if why is None else (Reason.INVALID_SPEC, why)
    return check


def _owner(meta: Meta) -> dict:
    return {"apiVersion": API_VERSION, "kind": TRAINING_RUN.kind,
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}}


def storage_path(config: Config, meta: Meta) -> str:
    return checkpoint_prefix(config.artifact_root, meta.namespace, meta.name, meta.uid)


def _with_run(status: TrainingRunStatus, run: RunView | None) -> TrainingRunStatus:
    if run is None:
        return status
    def m(key: str, digits: int) -> float | None:
        # Rounded for people (printer columns); the exact series stays in MLflow.
        value = run.metrics.get(key)
        return None if value is None else round(value, digits)

    metrics = TrainingMetrics(loss=m("loss", 4), tokens_per_second=m("tokens_per_second", 0),
                              expert_load_imbalance=m("expert_load_imbalance", 3),
                              router_entropy=m("router_entropy", 3),
                              dropped_fraction=m("dropped_fraction", 4))
    return status.model_copy(update={
        "mlflow_run_id": run.run_id, "step": run.step if run.step is not None else status.step,
        "metrics": metrics, "checkpoint": run.tags.get("tugboat.dev/checkpoint", status.checkpoint)})


def _terminal(status: TrainingRunStatus) -> bool:
    trained = find(status.conditions, "Trained")
    return trained is not None and trained.status != ConditionStatus.UNKNOWN


def _finish(old, status, now, gen, ok: bool, reason: str, message: str) -> Outcome:
    status = set_conditions(status, now, gen,
                            ("Trained", ok, reason, message),
                            ("Ready", ok, reason, message),
                            ("Progressing", False, reason, message),
                            ("Degraded", not ok, reason, message if not ok else ""))
    status = status.model_copy(update={"phase": "Succeeded" if ok else "Failed", "message": message,
                                       "completion_time": now, "next_retry_time": None})
    return Outcome(status=status, events=phase_event(old, status, reason, message))


def _router_verdict(spec: TrainingRunSpec, run: RunView) -> tuple[bool, str]:
    """The workload's own verdict (it smooths over the run's end) wins; else the last metrics."""
    slo = spec.router_health
    imb, ent = run.metrics.get("expert_load_imbalance"), run.metrics.get("router_entropy")
    if imb is None or ent is None:
        return False, "the run reported no router-health metrics"
    tagged = run.tags.get("tugboat.dev/router-healthy")
    ok = tagged == "true" if tagged in ("true", "false") else (
        imb < slo.max_imbalance and ent > slo.min_entropy)
    verdict = "meets" if ok else "breaches"
    return ok, (f"router health {verdict} the SLOs: imbalance {imb:.2f} (< {slo.max_imbalance}), "
                f"entropy {ent:.2f} (> {slo.min_entropy})")


def _failure_reason(observed: Observed) -> str:
    tagged = (observed.run.tags.get("tugboat.dev/result") if observed.run else None) or ""
    found = _REASON_IN_TEXT.search(tagged or (observed.ray_job.message if observed.ray_job else ""))
    return found.group(1) if found else Reason.ATTEMPT_FAILED


def _progress(status, now, gen, phase: str, reason: str, message: str, scheduled: bool | None):
    items = [("Progressing", True, reason, message), ("Ready", False, reason, message),
             ("Trained", ConditionStatus.UNKNOWN, reason, message)]
    if scheduled is not None:
        items.append(("Scheduled", scheduled, reason if not scheduled else Reason.SCHEDULED,
                      message if not scheduled else "all Ray pods are placed"))
    status = set_conditions(status, now, gen, *items)
    return status.model_copy(update={"phase": phase, "message": message})


def _retry_or_fail(observed: Observed, spec: TrainingRunSpec, status, now, attempt: int) -> Outcome:
    gen, old = observed.meta.generation, observed.status
    reason = _failure_reason(observed)
    detail = (observed.ray_job.message if observed.ray_job else "") or reason
    if reason in FINAL_REASONS:
        return _finish(old, status, now, gen, False, reason, f"attempt {attempt} failed: {detail}")
    if attempt >= spec.retry.max_attempts:
        return _finish(old, status, now, gen, False, Reason.ATTEMPTS_EXHAUSTED,
                       f"{attempt} of {spec.retry.max_attempts} attempts failed; last: {detail}")
    delay = spec.retry.backoff_seconds * 2 ** (attempt - 1)
    at = now + timedelta(seconds=delay)
    message = (f"attempt {attempt} failed ({detail}); attempt {attempt + 1} resumes from the "
               f"checkpoint in {delay}s")
    status = _progress(status, now, gen, "Retrying", Reason.BACK_OFF, message, None)
    status = status.model_copy(update={"next_retry_time": at})
    events = (EventIntent("Warning", Reason.ATTEMPT_FAILED, message),)
    return Outcome(status=status, events=events, requeue_after=float(delay))


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old, raw = observed.meta, observed.status, observed.spec or {}
    pool = (raw.get("resources") or {}).get("nodePool", "gpu")
    checks = [named_tenant(raw.get("tenant"), observed.tenant, meta.namespace),
              node_pool_allowed(observed.tenant if raw.get("tenant") else None, pool,
                                "spec.resources.nodePool"),
              _dataset_allowed(observed.config), *_pool_checks(observed)]
    spec, status, stop = validate(meta, TRAINING_RUN.spec, raw, old, checks, now)
    if stop is not None:
        return stop
    if _terminal(status):
        return Outcome(status=status)
    gen, cfg = meta.generation, observed.config
    attempt = status.attempt or 1
    if spec.suspend:
        status = _progress(status, now, gen, "Suspended", Reason.SUSPENDED,
                           "suspended; resuming continues from the last checkpoint", None)
        status = set_conditions(status, now, gen, ("Progressing", False, Reason.SUSPENDED, "suspended"))
        deletions = ((("ray.io/v1", "RayJob", observed.ray_job.name, meta.namespace),)
                     if observed.ray_job else ())
        return Outcome(status=status, deletions=deletions,
                       events=phase_event(old, status, Reason.SUSPENDED, "suspended"))
    ray_job = observed.ray_job
    if status.next_retry_time is not None:
        if now < status.next_retry_time:
            return Outcome(status=status,
                           requeue_after=(status.next_retry_time - now).total_seconds())
        attempt, ray_job = attempt + 1, None
        status = status.model_copy(update={"next_retry_time": None})
    status = _with_run(status.model_copy(update={"attempt": attempt,
                                                 "start_time": status.start_time or now}),
                       observed.run)
    ctx = TrainingContext(owner=_owner(meta), attempt=attempt, image=cfg.image,
                          ray_version=cfg.ray_version, pool_label=cfg.pool_label,
                          head_pool=cfg.head_pool, mlflow_tracking_uri=cfg.mlflow_tracking_uri,
                          storage_path=storage_path(cfg, meta), dataset_roots=cfg.dataset_roots)
    name = ray_job_name(meta.name, meta.uid, attempt)
    status = status.model_copy(update={"ray_job_name": name})
    if ray_job is not None and ray_job.succeeded:
        if observed.run is None:
            status = _progress(status, now, gen, "Running", Reason.WAITING_FOR_METRICS,
                               "RayJob complete; waiting for its MLflow run", True)
            return Outcome(status=status, requeue_after=POLL_SECONDS)
        ok, message = _router_verdict(spec, observed.run)
        reason = Reason.TRAINING_SUCCEEDED if ok else Reason.ROUTER_UNHEALTHY
        return _finish(old, status, now, gen, ok, reason, message)
    if ray_job is not None and ray_job.failed:
        return _retry_or_fail(observed, spec, status, now, attempt)
    children = (build_config_map(spec, ctx), build_ray_job(spec, ctx))
    # Starting and waiting for capacity end with a RayJob or pod event (both watched): no poll.
    requeue = None
    if observed.unschedulable:
        message = f"waiting for capacity in pool {spec.resources.node_pool}: {observed.unschedulable[0]}"
        status = _progress(status, now, gen, "Pending", Reason.WAITING_FOR_CAPACITY, message, False)
    elif ray_job is not None and ray_job.running:
        step = f"step {status.step}/{spec.training.steps}" if status.step is not None else "starting"
        loss = status.metrics.loss if status.metrics else None
        message = f"attempt {attempt}: {step}" + (f", loss {loss:.4f}" if loss is not None else "")
        status = _progress(status, now, gen, "Running", Reason.TRAINING, message, True)
        requeue = LIVE_POLL_SECONDS
    else:
        status = _progress(status, now, gen, "Starting", Reason.STARTING,
                           f"attempt {attempt}: RayJob {name} is starting", None)
    return Outcome(status=status, children=children, requeue_after=requeue,
                   events=phase_event(old, status, find(status.conditions, "Progressing").reason,
                                      status.message or ""))
