"""Informers: one per kind and selection (ours, the children we read, the core kinds in CORE_KINDS), a
fresh list then a watch resumed from the last resourceVersion (bookmarks keep it current on a quiet
kind), a relist when the API server answers 410 Gone. They feed a Store (store.py); readers never
wait on the API server. Subscribers hear of each change the store takes in (not the first list, not
the echo of a write whose answer is already stored), from the informer's thread. Must not decide
anything.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .selectors import matches, parse
from .store import IndexFn, Store

log = logging.getLogger("tugboat.cache")
WATCH_SECONDS = 240  # the server ends each watch after this; we resume from the last version
RETRY_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0  # a kind that keeps failing (its CRD not installed) is retried this rarely
GONE = 410
# What a subscriber is told: the event type (ADDED, MODIFIED, DELETED) and the object as stored
# (shared with readers: not to be changed).
Subscriber = Callable[[str, dict], None]
# Core kinds (served under /api, not /apis) an informer may hold: their CoreV1Api name, namespaced?
CORE_KINDS = {"ConfigMap": ("config_map", True), "Pod": ("pod", True), "Node": ("node", False),
              "Namespace": ("namespace", False), "ResourceQuota": ("resource_quota", True),
              "LimitRange": ("limit_range", True)}


class _RawWatch(watch.Watch):
    """Events as the server's JSON: building the client's models for core kinds costs CPU per
    event, and we keep dicts anyway."""

    def get_return_type(self, func):
        return None


class Informer:
    """Keeps `store` equal to the API server's objects of one kind, cluster-wide (those matching
    `label_selector` when given: a child kind holds only what we made), or the one object `only`
    names (namespace, name)."""

    def __init__(self, api: client.ApiClient, api_version: str, kind: str, plural: str,
                 indexes: dict[str, IndexFn] | None = None, label_selector: str | None = None,
                 only: tuple[str, str] | None = None):
        self.api_version = api_version
        self.group, _, self.version = api_version.rpartition("/")
        if not self.group and kind not in CORE_KINDS:
            raise ValueError(f"core kind {kind}: only {', '.join(CORE_KINDS)} are cached")
        self.kind, self.plural = kind, plural
        self.label_selector, self.only = label_selector, only
        self.terms = parse(label_selector)
        if self.terms is None:
            raise ValueError(f"{plural}: {label_selector!r} is not an equality or existence selector")
        self.store = Store(indexes)
        self._api = api
        self._custom = client.CustomObjectsApi(api)
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: watch.Watch | None = None
        self._subscribers: list[Subscriber] = []
        self._thread = threading.Thread(target=self._run, name=f"informer-{plural}", daemon=True)

    def selects(self, obj: dict) -> bool:
        """Would our list hold `obj`?"""
        meta = obj.get("metadata") or {}
        if self.only is not None and (meta.get("namespace"), meta.get("name")) != self.only:
            return False
        return matches(meta.get("labels"), self.terms)

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def _tell(self, type_: str, obj: dict) -> None:
        for fn in self._subscribers:
            try:
                fn(type_, obj)
            except Exception:  # noqa: BLE001 - one subscriber's bug must not stop the watch
                log.exception("%s: subscriber %s failed on %s", self.plural,
                              getattr(fn, "__name__", fn), type_)

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
        delay = RETRY_SECONDS
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._relist()
                version = self._watch_from(version)
                delay = RETRY_SECONDS
            except ApiException as exc:
                if exc.status == GONE:
                    log.info("%s: watch version expired, listing afresh", self.plural)
                    version = None
                    continue
                log.warning("%s: %s; retrying in %.0f s", self.plural, exc.reason, delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            except Exception as exc:  # noqa: BLE001 - connection errors: the watch resumes
                log.warning("%s: %s: %s; retrying in %.0f s", self.plural, type(exc).__name__, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    def holds(self, namespace: str | None, name: str | None) -> bool:
        """May this informer answer for that object (a single-object informer: only for it)?"""
        return self.only is None or self.only == (namespace, name)

    def _selection(self) -> dict:
        out = {"label_selector": self.label_selector} if self.label_selector else {}
        if self.only is not None:
            out["field_selector"] = f"metadata.name={self.only[1]}"
        return out

    def _lister(self):
        """The list call (also streamed by the watch) for this informer's objects."""
        if not self.group:
            core = client.CoreV1Api(self._api)
            name, namespaced = CORE_KINDS[self.kind]
            if self.only is not None and namespaced:
                return partial(getattr(core, f"list_namespaced_{name}"), self.only[0])
            return getattr(core, f"list_{name}_for_all_namespaces" if namespaced else f"list_{name}")
        if self.only is not None:
            return partial(self._custom.list_namespaced_custom_object, self.group, self.version,
                           self.only[0], self.plural)
        return partial(self._custom.list_cluster_custom_object, self.group, self.version, self.plural)

    def _relist(self) -> str:
        if self.group:
            out = self._lister()(**self._selection())
        else:  # core models would come back as objects: read the JSON itself
            out = json.loads(self._lister()(**self._selection(), _preload_content=False).data)
        for item in out["items"]:  # items of a list carry no apiVersion/kind on some servers
            item.setdefault("apiVersion", self.api_version)
            item.setdefault("kind", self.kind)
        changes = self.store.replace(out["items"])
        if self._synced.is_set():  # a relist after a gap: what the watch would have said
            for type_, obj in changes:
                self._tell(type_, obj)
        self._synced.set()
        return out["metadata"]["resourceVersion"]

    def _watch_from(self, version: str) -> str:
        self._watch = _RawWatch()
        for event in self._watch.stream(
                self._lister(), resource_version=version, allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                **self._selection(),
                # a connection dropped without a word would otherwise leave us waiting forever
                _request_timeout=WATCH_SECONDS + 30):
            obj = event["raw_object"]
            version = obj["metadata"].get("resourceVersion") or version
            if apply_event(self.store, event["type"], obj):
                self._tell(event["type"], obj)
            if self._stopping.is_set():
                break
        return version


def apply_event(store: Store, type_: str, obj: dict) -> bool:
    """One watch event into the store (a bookmark only moves the version, read by the caller);
    True if it was news to the store."""
    if type_ in ("ADDED", "MODIFIED"):
        return store.upsert(obj)
    if type_ == "DELETED":
        store.delete(obj)
        return True
    return False
