"""Informers: one per custom kind, a fresh list then a watch resumed from the last resourceVersion
(bookmarks keep it current on a quiet kind), a relist when the API server answers 410 Gone. They
feed a Store (store.py); readers never wait on the API server. Must not decide anything.
"""

from __future__ import annotations

import logging
import threading
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .store import IndexFn, Store

log = logging.getLogger("tugboat.cache")
WATCH_SECONDS = 240  # the server ends each watch after this; we resume from the last version
RETRY_SECONDS = 2.0
GONE = 410


class Informer:
    """Keeps `store` equal to the API server's objects of one custom kind, cluster-wide."""

    def __init__(self, api: client.ApiClient, api_version: str, kind: str, plural: str,
                 indexes: dict[str, IndexFn] | None = None):
        self.group, self.version = api_version.split("/")
        self.kind, self.plural = kind, plural
        self.store = Store(indexes)
        self._custom = client.CustomObjectsApi(api)
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"informer-{plural}", daemon=True)

    def start(self) -> Informer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def _run(self) -> None:
        version: str | None = None
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._relist()
                version = self._watch_from(version)
            except ApiException as exc:
                if exc.status == GONE:
                    log.info("%s: watch version expired, listing afresh", self.plural)
                    version = None
                    continue
                log.warning("%s: %s; retrying in %.0f s", self.plural, exc.reason, RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)
            except Exception as exc:  # noqa: BLE001 - connection errors: the watch resumes
                log.warning("%s: %s: %s; retrying in %.0f s", self.plural, type(exc).__name__, exc,
                            RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)

    def _relist(self) -> str:
        out = self._custom.list_cluster_custom_object(self.group, self.version, self.plural)
        for item in out["items"]:  # items of a list carry no apiVersion/kind on some servers
            item.setdefault("apiVersion", f"{self.group}/{self.version}")
            item.setdefault("kind", self.kind)
        self.store.replace(out["items"])
        self._synced.set()
        return out["metadata"]["resourceVersion"]

    def _watch_from(self, version: str) -> str:
        self._watch = watch.Watch()
        for event in self._watch.stream(
                self._custom.list_cluster_custom_object, self.group, self.version, self.plural,
                resource_version=version, allow_watch_bookmarks=True, timeout_seconds=WATCH_SECONDS,
                # a connection dropped without a word would otherwise leave us waiting forever
                _request_timeout=WATCH_SECONDS + 30):
            obj = event["object"]
            version = obj["metadata"].get("resourceVersion") or version
            apply_event(self.store, event["type"], obj)
            if self._stopping.is_set():
                break
        return version


def apply_event(store: Store, type_: str, obj: dict) -> None:
    """One watch event into the store (a bookmark only moves the version, read by the caller)."""
    if type_ in ("ADDED", "MODIFIED"):
        store.upsert(obj)
    elif type_ == "DELETED":
        store.delete(obj)
