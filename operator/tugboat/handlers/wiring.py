"""Kopf handlers of our own kinds, the informer subscribers for what else reconciles read, and the
single startup hook with every operator setting."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import kopf

from ..api.base import API_VERSION, GROUP, VERSION
from ..api.kinds import AGENT_DEPLOYMENT, KINDS, MODEL_RELEASE, TENANT, TRAINING_RUN, Kind
from ..builders.agent_deployment import GATEWAY_API
from ..builders.training_run import RUN_LABEL
from ..controllers import cleanup
from ..controllers.agent_deployment import (
    agent_deployments_naming_route,
    agent_deployments_of_line,
    agent_deployments_on_gateway,
)
from ..controllers.engine import report_failure
from ..controllers.gather import tenant_of_namespace
from ..controllers.indexes import MANAGED, MODEL_LINE, TRAINING_SOURCE, lookup
from ..controllers.model_release import TRUST_CONFIGMAP
from ..controllers.reconcilers import reconcile
from ..controllers.tenant import delete_namespaces, tenant_reach
from ..controllers.training_run import training_runs_labelled
from ..kube.cache import Subscriber
from ..kube.cached import CachedKube
from ..kube.client import Kube
from ..kube.errors import KubeError, Transient
from ..metrics import DURATION, ERRORS, QUEUE_DUE, QUEUE_SCHEDULED, RECONCILES
from . import runtime
from .requeue import RequeueQueue
from .standby import GATE

log = logging.getLogger("tugboat")
_locks: defaultdict[tuple, threading.Lock] = defaultdict(threading.Lock)
# Every reconcile runs from here (events, fan-outs, pauses, analysis intervals, stage polls, retries
# of failed passes): one pending wake-up per object. Reconciles wait on the API server, not the CPU:
# eight in flight keep a burst of new objects from queueing behind each other's round trips.
REQUEUE = RequeueQueue(workers=8)
USAGE_DELAY = 1.0  # seconds a Tenant's usage count may lag its AgentDeployments
QUEUE_DUE.set_function(REQUEUE.due)
QUEUE_SCHEDULED.set_function(REQUEUE.pending)


class UnboundedBackoffs:
    """kopf's default API retries (1, 1, 2, ... 21 s) give up after ~54 s; a watcher whose retries
    give up fails and is not started again, so an API server away longer leaves the operator alive
    but deaf (found by tests/chaos). These never give up: 30 s apart after the first minute.
    Re-iterable (each request starts from the first delay) and without a length (kopf then counts
    no last attempt)."""

    FIRST = (1, 1, 2, 3, 5, 8, 13, 21)
    THEN = 30

    def __iter__(self):
        return itertools.chain(self.FIRST, itertools.repeat(self.THEN))


class UnreadDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf keeps each object's last handled spec to tell on.create from on.update handlers; we have
    neither (reconciles start from events), and deletion is told by deletionTimestamp. Writing it
    cost a PATCH on every new object and spec change: it is read (an old one is left alone), never
    written."""

    def store(self, *, body, patch, essence) -> None:
        return None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_) -> None:
    opts = runtime.options()
    # HA: replicas share one cluster-wide peering; the highest priority is active, others pause.
    settings.peering.name = "tugboat"
    settings.peering.clusterwide = True
    settings.peering.mandatory = not opts.standalone
    settings.peering.standalone = opts.standalone
    settings.peering.priority = opts.priority
    # A crashed leader's peering record expires after this; a standby then takes over.
    settings.peering.lifetime = opts.peering_lifetime
    # Our Events are posted by kube/; kopf's own per-handler log events would double them.
    settings.posting.level = logging.WARNING
    # kopf logs every handled watch event at INFO; our reconciles log what changed instead.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # Reconciles are sync and short; a few threads keep one slow call from blocking the rest.
    settings.execution.max_workers = 8
    # Watches reconnect regularly so a silently dropped connection never stalls reconciles.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    # A control-plane outage of any length ends with every watch resumed (see UnboundedBackoffs).
    settings.networking.error_backoffs = UnboundedBackoffs()
    # Finalizers (TrainingRun: stop its RayJobs) and kopf's bookkeeping under our own domain.
    settings.persistence.finalizer = "tugboat.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tugboat.dev")
    settings.persistence.diffbase_storage = UnreadDiffBase(prefix="tugboat.dev",
                                                           key="last-handled-configuration")


@kopf.on.login()
def login(**_) -> kopf.ConnectionInfo:
    """kopf talks to the same API server, with the same credentials, as our own client (kopf
    calls this again on a 401, so a rotated ServiceAccount token is picked up)."""
    kube = runtime.kube()
    cfg = kube.api.configuration
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file, private_key_path=cfg.key_file, token=kube.bearer_token())


def enqueue(kind: Kind, name: str, namespace: str | None, after: float = 0) -> None:
    """Wake the object now, through the queue: a burst of events (our own writes, a fan-out from a
    Tenant or a release) collapses into the one pass already waiting, and kopf's threads go back
    to the watches at once instead of waiting on reconciles. Not gated by peering: kopf delivers
    events to the active replica only (our gate may not have seen kopf's own resume yet)."""
    REQUEUE.schedule((kind.kind, namespace, name), after, lambda: run_reconcile(kind, name, namespace))


def _wake(kind: Kind, name: str, namespace: str | None) -> Callable[[], None]:
    def again() -> None:
        # kopf's pause stops events, not our wake-ups: a standby replica drops them (kopf lists
        # everything afresh when it resumes this replica).
        if GATE.active():
            run_reconcile(kind, name, namespace)
    return again


def run_reconcile(kind: Kind, name: str, namespace: str | None) -> None:
    """One serialized, timed, counted reconcile of one object; errors are logged, not raised.
    The object is woken again when its outcome asks (`requeue_after`) or, after a transient
    failure, with exponential back-off."""
    key = (kind.kind, namespace, name)
    again = _wake(kind, name, namespace)
    with _locks[key]:
        started = time.monotonic()
        try:
            outcome = reconcile(runtime.kube(), kind, name, namespace, runtime.options().settings)
            RECONCILES.labels(kind.kind, "ok").inc()
            REQUEUE.succeeded(key)
            if outcome is not None and outcome.requeue_after is not None:
                REQUEUE.schedule(key, outcome.requeue_after, again)
        except Exception as exc:  # noqa: BLE001 - every failure is said on the object, none is lost
            RECONCILES.labels(kind.kind, "error").inc()
            ERRORS.labels(kind.kind, type(exc).__name__).inc()
            # Watch events are not retried by kopf; the world is re-read on the retry anyway. A bug
            # or a refusal may be cured by a later spec or a fix elsewhere: it is retried too, with
            # back-off up to its cap, so it never spins.
            delay = REQUEUE.failed(key, again)
            level = logging.WARNING if isinstance(exc, KubeError) else logging.ERROR
            log.log(level, "reconcile %s %s/%s failed (retry in %.0f s): %s", kind.kind, namespace, name,
                    delay, exc, exc_info=not isinstance(exc, KubeError))
            if not isinstance(exc, Transient):
                _say_failure(kind, name, namespace, exc)
        finally:
            DURATION.labels(kind.kind).observe(time.monotonic() - started)


def _say_failure(kind: Kind, name: str, namespace: str | None, exc: Exception) -> None:
    try:
        report_failure(runtime.kube(), kind, name, namespace, exc)
    except KubeError as err:  # the API server refusing this too: the log line is all there is
        log.warning("could not report the failure on %s %s/%s: %s", kind.kind, namespace, name, err)


def _remember(body, type: str | None) -> None:
    """kopf's body may be newer than our informer's watch: the cache keeps the newer, so the
    reconcile this event starts reads at least what kopf saw (kopf runs an event's handlers in
    order of registration: this one first, the fan-outs below after it)."""
    kube = runtime.kube()
    if isinstance(kube, CachedKube):
        kube.remember(dict(body), deleted=type == "DELETED")


def _on_own_event(kind: Kind):
    def handler(type: str | None, name: str, namespace: str | None, body, **_) -> None:
        _remember(body, type)
        if type != "DELETED":
            enqueue(kind, name, namespace)
    handler.__name__ = f"on_{kind.plural}"
    return handler


for _kind in KINDS:
    kopf.on.event(GROUP, VERSION, _kind.plural, id=f"reconcile-{_kind.singular}")(_on_own_event(_kind))


_tenant_reach: dict[str, tuple] = {}


@kopf.on.event(GROUP, VERSION, TENANT.plural)
def on_tenant_change(type: str | None, name: str, spec, status, body, **_) -> None:
    """Objects judged against a Tenant are re-judged when it changes (or appears, or goes); the
    namespaces it set up before (status) too, so one it no longer lists stops serving. Its own
    status writes (usage counts) change nothing they are judged against: no fan-out for those."""
    reach = tenant_reach(dict(body))
    if type == "DELETED":
        _tenant_reach.pop(name, None)
    elif _tenant_reach.get(name) == reach:
        return
    else:
        _tenant_reach[name] = reach
    kube: Kube = runtime.kube()
    for ns in set(spec.get("namespaces", [])) | set((status or {}).get("namespaces") or []):
        for kind in (AGENT_DEPLOYMENT, TRAINING_RUN):
            for obj in kube.list(API_VERSION, kind.kind, ns):
                enqueue(kind, obj["metadata"]["name"], ns)


@kopf.on.probe(id="api")
def api_reachable(**_) -> str:
    return runtime.kube().api.configuration.host


def _condition(status, type_: str) -> str | None:
    return next((c.get("status") for c in status.get("conditions", []) if c.get("type") == type_), None)


def _training_ended(status) -> bool:
    return _condition(status, "Trained") not in (None, "Unknown")


@kopf.on.delete(GROUP, VERSION, TRAINING_RUN.plural, id="stop-rayjobs")
def stop_ray_jobs(body, **_) -> None:
    """Cancel the training before the TrainingRun goes: delete its RayJobs, wait until gone (within
    the operator's cleanup timeout, then it goes anyway with a Warning naming what was left)."""
    waiting = cleanup.stop_ray_jobs(runtime.kube(), dict(body), datetime.now(UTC),
                                    runtime.options().settings.cleanup_timeout)
    if waiting:
        raise kopf.TemporaryError(waiting, delay=2)


@kopf.on.event(GROUP, VERSION, TRAINING_RUN.plural, id="release-sources")
def on_training_run_for_releases(type: str | None, name: str, namespace: str, status, **_) -> None:
    """A release waits for its TrainingRun: re-judge releases built from this one when it appears,
    goes or ends. Its live-metric writes (every poll while training) change nothing they wait on."""
    if type not in (None, "ADDED", "DELETED") and not _training_ended(status):
        return
    for obj in lookup(runtime.kube(), MODEL_RELEASE.kind, TRAINING_SOURCE, f"{namespace}/{name}"):
        enqueue(MODEL_RELEASE, obj["metadata"]["name"], namespace)


@kopf.on.event(GROUP, VERSION, MODEL_RELEASE.plural, id="serving-releases")
def on_release_for_serving(spec, **_) -> None:
    """A release was verified, promoted, revoked or deleted: its line's deployments re-pick."""
    for name, namespace in agent_deployments_of_line(runtime.kube(), spec.get("modelLine", "")):
        enqueue(AGENT_DEPLOYMENT, name, namespace)


_WAITING_FOR_TARGETS = ("Ready", "Progressing", "Paused", "Inconclusive")


@kopf.on.event(GROUP, VERSION, AGENT_DEPLOYMENT.plural, id="rollout-targets")
def on_agent_deployment_for_rollouts(spec, **_) -> None:
    """A deployment of the line came, went, changed or moved its stable release: releases that
    are rolling out (or found nothing to roll out to) re-gather their targets."""
    line = spec.get("modelLine", "")
    for obj in lookup(runtime.kube(), MODEL_RELEASE.kind, MODEL_LINE, line):
        if (obj.get("status") or {}).get("phase") in _WAITING_FOR_TARGETS:
            enqueue(MODEL_RELEASE, obj["metadata"]["name"], obj["metadata"]["namespace"])


@kopf.on.event(GROUP, VERSION, AGENT_DEPLOYMENT.plural, id="tenant-usage")
def on_agent_deployment_count(type: str | None, namespace: str, **_) -> None:
    """The Tenant's status counts its AgentDeployments."""
    if type in ("ADDED", "DELETED"):
        owner = tenant_of_namespace(runtime.kube(), namespace)
        if owner is not None:
            # A second later: a burst of new deployments is counted in one pass, not one each.
            enqueue(TENANT, owner.name, None, after=USAGE_DELAY)


def _deletes_namespaces(spec, **_) -> bool:
    # Only these Tenants get a finalizer: with Retain there is nothing to do before they go.
    return spec.get("deletionPolicy") == "Delete"


@kopf.on.delete(GROUP, VERSION, TENANT.plural, when=_deletes_namespaces, id="delete-tenant-namespaces")
def delete_tenant_namespaces(name: str, body, **_) -> None:
    """deletionPolicy Delete: the namespaces the operator created for the Tenant, and all data in
    them, go with it; adopted ones stay. A refusal is retried (kopf) within the cleanup timeout,
    then the Tenant goes with a Warning naming what is left."""
    kube, s = runtime.kube(), runtime.options().settings
    try:
        delete_namespaces(kube, name, s)
    except KubeError as exc:
        if not cleanup.timed_out(dict(body), datetime.now(UTC), s.cleanup_timeout):
            raise
        kube.event(dict(body), "Warning", "CleanupTimedOut",
                   f"gave up deleting the tenant's namespaces after {s.cleanup_timeout:.0f}s: {exc}; "
                   "they are left behind for a person to clean up")


# --- What reconciles read besides their own object: told by our informers, not kopf ---
# kopf filters by label on the client, so its own watch of each of these kinds would read every
# Pod, ConfigMap and Deployment of the cluster; the informers already watch just ours (by label on
# the server) and have stored the change before telling us, so the pass it wakes reads it. They keep
# running on a standby replica: these wake-ups are gated by peering.


def wake(kind: Kind, name: str, namespace: str | None) -> None:
    REQUEUE.schedule((kind.kind, namespace, name), 0, _wake(kind, name, namespace))


def _wakes_owner(kind: Kind) -> Subscriber:
    """A child we own changed (status, deletion): its owner re-judges the world."""
    def on_child(type_: str, obj: dict) -> None:
        meta = obj["metadata"]
        for ref in meta.get("ownerReferences", []):
            if ref.get("apiVersion") == API_VERSION and ref.get("kind") == kind.kind:
                wake(kind, ref["name"], meta.get("namespace"))
    on_child.__name__ = f"wake_{kind.singular}"
    return on_child


def on_training_pod(type_: str, obj: dict) -> None:
    """A Ray pod of a TrainingRun was placed, refused (no capacity) or went: the run re-judges.
    RayJob status comes through its own informer and MLflow progress by the outcome's requeue, so
    no run needs a fixed timer."""
    meta = obj["metadata"]
    for name in training_runs_labelled(runtime.kube(), meta["namespace"], meta["labels"][RUN_LABEL]):
        wake(TRAINING_RUN, name, meta["namespace"])


def on_route(type_: str, obj: dict) -> None:
    """Ours: the Gateway accepted (or refused) an AgentDeployment's HTTPRoute, its status shows it.
    Someone else's came or went: a deployment refused for its name may now build its own."""
    meta = obj["metadata"]
    manager = (meta.get("labels") or {}).get("app.kubernetes.io/managed-by")
    if manager == "tugboat":
        _wakes_owner(AGENT_DEPLOYMENT)(type_, obj)
    elif manager is None:
        for agent, ns in agent_deployments_naming_route(runtime.kube(), meta["namespace"], meta["name"]):
            wake(AGENT_DEPLOYMENT, agent, ns)


def on_gateway(type_: str, obj: dict) -> None:
    """A Gateway came, changed or went: the deployments naming it re-judge their gatewayRef."""
    meta = obj["metadata"]
    for agent, ns in agent_deployments_on_gateway(runtime.kube(), meta["namespace"], meta["name"]):
        wake(AGENT_DEPLOYMENT, agent, ns)


def on_trusted_key(type_: str, obj: dict) -> None:
    """The trusted key appeared, rotated or went: every AgentDeployment mounts a copy of it."""
    for agent in runtime.kube().list(API_VERSION, AGENT_DEPLOYMENT.kind):
        wake(AGENT_DEPLOYMENT, agent["metadata"]["name"], agent["metadata"]["namespace"])


def subscribe(kube: CachedKube, system_namespace: str) -> None:
    """Attach the handlers above to the informers operator_main started (CHILD_CACHES)."""
    kube.informer("apps/v1", "Deployment", MANAGED).subscribe(_wakes_owner(AGENT_DEPLOYMENT))
    kube.informer("ray.io/v1", "RayJob", MANAGED).subscribe(_wakes_owner(TRAINING_RUN))
    kube.informer("batch/v1", "Job", MANAGED).subscribe(_wakes_owner(MODEL_RELEASE))
    kube.informer("v1", "Pod", RUN_LABEL).subscribe(on_training_pod)
    kube.informer(GATEWAY_API, "HTTPRoute").subscribe(on_route)
    kube.informer(GATEWAY_API, "Gateway").subscribe(on_gateway)
    kube.informer("v1", "ConfigMap", only=(system_namespace, TRUST_CONFIGMAP)).subscribe(on_trusted_key)
