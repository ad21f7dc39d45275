"""Kopf handlers and the single startup hook with every operator setting."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import kopf

from ..api.base import API_VERSION, GROUP, VERSION
from ..api.kinds import AGENT_DEPLOYMENT, KINDS, TENANT, TRAINING_RUN, Kind
from ..controllers.reconcilers import Settings, reconcile
from ..kube.client import Kube
from ..kube.errors import KubeError, Transient
from ..metrics import DURATION, ERRORS, RECONCILES
from . import runtime

log = logging.getLogger("tugboat")
RETRY_SECONDS = 5.0
_locks: defaultdict[tuple, threading.Lock] = defaultdict(threading.Lock)


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


@kopf.on.login()
def login(**_) -> kopf.ConnectionInfo:
    """kopf talks to the same API server, with the same credentials, as our own client."""
    cfg = runtime.kube().api.configuration
    token = (cfg.api_key or {}).get("authorization", "").removeprefix("Bearer ").strip() or None
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file, private_key_path=cfg.key_file, token=token)


def run_reconcile(kind: Kind, name: str, namespace: str | None) -> None:
    """One serialized, timed, counted reconcile of one object; errors are logged, not raised."""
    with _locks[(kind.kind, namespace, name)]:
        started = time.monotonic()
        try:
            reconcile(runtime.kube(), kind, name, namespace, Settings(runtime.options().sigstore))
            RECONCILES.labels(kind.kind, "ok").inc()
        except KubeError as exc:
            RECONCILES.labels(kind.kind, "error").inc()
            ERRORS.labels(kind.kind, type(exc).__name__).inc()
            log.warning("reconcile %s %s/%s failed: %s", kind.kind, namespace, name, exc)
            if isinstance(exc, Transient):
                # Watch events are not retried by kopf; the world is re-read on the retry anyway.
                threading.Timer(RETRY_SECONDS, run_reconcile, (kind, name, namespace)).start()
        finally:
            DURATION.labels(kind.kind).observe(time.monotonic() - started)


def _on_own_event(kind: Kind):
    def handler(type: str | None, name: str, namespace: str | None, **_) -> None:
        if type != "DELETED":
            run_reconcile(kind, name, namespace)
    handler.__name__ = f"on_{kind.plural}"
    return handler


for _kind in KINDS:
    kopf.on.event(GROUP, VERSION, _kind.plural, id=f"reconcile-{_kind.singular}")(_on_own_event(_kind))


@kopf.on.event(GROUP, VERSION, TENANT.plural)
def on_tenant_change(spec, **_) -> None:
    """Objects judged against a Tenant are re-judged when it changes (or appears, or goes)."""
    kube: Kube = runtime.kube()
    for ns in set(spec.get("namespaces", [])):
        for kind in (AGENT_DEPLOYMENT, TRAINING_RUN):
            for obj in kube.list(API_VERSION, kind.kind, ns):
                run_reconcile(kind, obj["metadata"]["name"], ns)


@kopf.on.probe(id="api")
def api_reachable(**_) -> str:
    return runtime.kube().api.configuration.host
