"""Start kopf with Tugboat's handlers after checking that the API server answers."""

from __future__ import annotations

import asyncio
import logging
import time

import kopf
from prometheus_client import start_http_server

from .kube.cached import CachedKube
from .kube.client import Kube
from .kube.errors import KubeError

log = logging.getLogger("tugboat")
SYNC_TIMEOUT = 60.0  # seconds for the first list of every cached kind before we give up
CHILD_SYNC_TIMEOUT = 10.0  # children not listed by then are read from the API server until they are


def _reachable(kube: Kube) -> str | None:
    """None if the API server answers, else a one-line reason."""
    from kubernetes import client

    logging.getLogger("urllib3").setLevel(logging.ERROR)  # one clear line instead of retry noise
    try:
        client.VersionApi(kube.api).get_code(_request_timeout=10)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot reach"
        reason = getattr(exc, "reason", None) or exc
        return f"{type(exc).__name__}: {reason}"


def _warm(kube: CachedKube, system_namespace: str) -> bool:
    """Informers for the Tugboat kinds, listed before any handler runs: reconciles then read memory,
    and what changed while the operator was down is in the fresh list. A standby replica keeps them
    warm too (kopf pauses its handlers, not the informers), ready to take over."""
    from .api.base import API_VERSION
    from .api.kinds import KINDS
    from .controllers.indexes import CHILD_CACHES, INDEXES
    from .controllers.model_release import TRUST_CONFIGMAP

    for kind in KINDS:
        kube.cache(API_VERSION, kind.kind, kind.plural, INDEXES[kind.kind])
    for api_version, kind_name, plural, selector in CHILD_CACHES:
        kube.cache(api_version, kind_name, plural, label_selector=selector)
    # The trusted key, read by every release and deployment pass: that one ConfigMap.
    kube.cache("v1", "ConfigMap", "configmaps", only=(system_namespace, TRUST_CONFIGMAP))
    started = time.monotonic()
    missing = kube.wait_synced(SYNC_TIMEOUT, kinds=[k.kind for k in KINDS])
    if missing:
        log.error("caches not synced after %.0f s for %s: are the CRDs installed, and may we list "
                  "and watch them?", SYNC_TIMEOUT, ", ".join(missing))
        kube.stop()
        return False
    # A child kind a cluster lacks (no KubeRay, no Gateway API) keeps retrying in the background.
    late = kube.wait_synced(CHILD_SYNC_TIMEOUT)  # ours are synced: this waits for the rest
    log.info("caches synced in %.1f s%s", time.monotonic() - started,
             f"; not yet {', '.join(late)} (read from the API server meanwhile)" if late else "")
    return True


def main(kubeconfig: str | None, priority: int, standalone: bool,
         metrics: tuple[str, int], health: tuple[str, int], peering_lifetime: int,
         settings) -> int:
    from .handlers import runtime

    try:
        kube = CachedKube.connect(kubeconfig)
    except Exception as exc:  # noqa: BLE001 - bad or missing kubeconfig
        log.error("cannot load Kubernetes configuration: %s", exc)
        return 2
    problem = _reachable(kube)
    if problem is not None:
        log.error("cannot reach the Kubernetes API server at %s: %s",
                  kube.api.configuration.host, problem)
        return 2
    if not _warm(kube, settings.system_namespace):
        return 2
    runtime.init(kube, runtime.Options(kubeconfig, priority, standalone, peering_lifetime, settings))
    from . import handlers  # registers the kopf handlers
    handlers.wiring.subscribe(kube, settings.system_namespace)
    from .handlers.standby import IDENTITY

    start_http_server(metrics[1], addr=metrics[0])
    log.info("tugboat operator: priority %d, metrics on %s:%d", priority, *metrics)
    try:
        asyncio.run(kopf.operator(
            clusterwide=True, standalone=standalone, priority=priority, identity=IDENTITY,
            liveness_endpoint=f"http://{health[0]}:{health[1]}/healthz"))
    except KubeError as exc:
        log.error("operator stopped: %s", exc)
        return 1
    finally:
        kube.stop()  # the events still queued are posted
    return 0
