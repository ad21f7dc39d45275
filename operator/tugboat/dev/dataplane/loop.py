"""A level-triggered control loop on a thread: watches wake it, a resync interval backs them up.

Decides when a loop runs its `reconcile_all` pass: at once after any watch event on its targets,
else every `busy_interval` seconds while it has work in flight (a process to poll, a Ray job to
mirror) and every `idle_interval` seconds otherwise. Watches only wake the loop; each pass reads
the world afresh, so a missed event costs latency, never correctness.
Must not let one failing object stop the others, nor log the same failure every second.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kubernetes import client, watch

from ...kube.client import Kube

WATCH_SECONDS = 30  # server-side watch timeout; a fresh watch then starts


@dataclass(frozen=True)
class WatchTarget:
    """A collection to watch: core pods, services, namespaces, EndpointSlices or a custom
    resource, cluster-wide."""

    plural: str
    group: str = ""
    version: str = "v1"
    label_selector: str | None = None


class ReconcileLoop:
    name = "loop"
    targets: tuple[WatchTarget, ...] = ()
    busy_interval = 1.0
    idle_interval = 10.0

    def __init__(self, api_client: client.ApiClient):
        self.api_client = api_client
        self.kube = Kube(api_client)
        self.log = logging.getLogger(f"tugboat.dev.dataplane.{self.name}")
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_error: dict[str, str] = {}

    # -- to be provided by each loop ------------------------------------------------------------
    def reconcile_all(self) -> None:
        raise NotImplementedError

    def busy(self) -> bool:
        return False

    def shutdown(self) -> None:
        """Release what the loop started (processes); called once after the thread ended."""

    # -- machinery ------------------------------------------------------------------------------
    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, name=f"dataplane-{self.name}", daemon=True)]
        for t in self.targets:
            self._threads.append(threading.Thread(target=self._watch, args=(t,), daemon=True,
                                                  name=f"dataplane-{self.name}-watch-{t.plural}"))
        for th in self._threads:
            th.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stopping.set()
        self._wake.set()
        # Watch threads end by themselves within WATCH_SECONDS; only the worker is awaited.
        if self._threads:
            self._threads[0].join(timeout)
        self.shutdown()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.reconcile_all()
            except Exception as exc:  # noqa: BLE001 - a loop must survive anything and retry
                self.report_error("pass", exc)
            self._wake.wait(self.busy_interval if self.busy() else self.idle_interval)

    def report_error(self, key: str, exc: BaseException) -> None:
        """Log a failure once per distinct message for `key` (the object), not on every pass."""
        message = f"{type(exc).__name__}: {exc}"
        if self._last_error.get(key) != message:
            self._last_error[key] = message
            self.log.warning("%s: %s: %s", self.name, key, message)

    def clear_error(self, key: str) -> None:
        self._last_error.pop(key, None)

    def _stream(self, target: WatchTarget):
        kw = {"timeout_seconds": WATCH_SECONDS, "_request_timeout": WATCH_SECONDS + 10}
        if target.label_selector:
            kw["label_selector"] = target.label_selector
        if target.group:
            api = client.CustomObjectsApi(self.api_client)
            return watch.Watch().stream(api.list_cluster_custom_object, target.group, target.version,
                                        target.plural, **kw)
        core, discovery = client.CoreV1Api(self.api_client), client.DiscoveryV1Api(self.api_client)
        lists = {"pods": core.list_pod_for_all_namespaces, "services": core.list_service_for_all_namespaces,
                 "namespaces": core.list_namespace,
                 "endpointslices": discovery.list_endpoint_slice_for_all_namespaces}
        if target.plural not in lists:
            raise ValueError(f"watch of {target.plural!r} is not supported (only {', '.join(lists)})")
        return watch.Watch().stream(lists[target.plural], **kw)

    def _watch(self, target: WatchTarget) -> None:
        while not self._stopping.is_set():
            try:
                for _event in self._stream(target):
                    self._wake.set()
                    if self._stopping.is_set():
                        return
            except Exception as exc:  # noqa: BLE001 - the API server may restart; watch again
                self.report_error(f"watch {target.plural}", exc)
                time.sleep(1.0)
