"""`CachedKube`: the `Kube` interface with reads of the cached kinds answered from informers.

Everything else (other kinds, label selectors, writes) goes to the API server, except a
server-side apply of a cached kind whose object already is what we declare (drift.py). Read-your-writes:
the answer to our own apply or status patch goes into the store at once (the newer version wins),
so the next reconcile does not act on what it just replaced. Answers are copies: callers may
change them without touching the store. Events are posted in the background (events.py).
"""

from __future__ import annotations

import copy
import logging
import time

from kubernetes import client

from ..metrics import APPLIES_SKIPPED
from .cache import Informer
from .client import Kube
from .drift import apply_needed, stamped
from .errors import Conflict, NotFound
from .events import EventSink
from .selectors import matches, narrows, parse
from .store import IndexFn

log = logging.getLogger("tugboat.cache")


class CachedKube(Kube):
    def __init__(self, api_client: client.ApiClient):
        super().__init__(api_client)
        # Several per kind when their selections differ (ConfigMaps: ours by label, the trusted one by name).
        self._informers: dict[tuple[str, str], list[Informer]] = {}
        self._events = EventSink(super().post_event)

    def cache(self, api_version: str, kind: str, plural: str, indexes: dict[str, IndexFn] | None = None,
              label_selector: str | None = None, only: tuple[str, str] | None = None) -> Informer:
        """Serve reads of this kind from an informer (once it has listed). With `label_selector`
        the cache holds only the matching objects: a get of another answers NotFound, a list by a
        selector at least as narrow is answered from it. With `only` (namespace, name) it answers
        for that one object; the rest go to the API server (or to another informer of the kind)."""
        informer = Informer(self.api, api_version, kind, plural, indexes, label_selector, only)
        self._informers.setdefault((api_version, kind), []).append(informer)
        return informer.start()

    def informer(self, api_version: str, kind: str, label_selector: str | None = None,
                 only: tuple[str, str] | None = None) -> Informer:
        """The informer made by `cache` with exactly this selection (to subscribe to its changes)."""
        for informer in self._informers.get((api_version, kind), ()):
            if informer.label_selector == label_selector and informer.only == only:
                return informer
        raise KeyError(f"no informer of {kind} ({api_version}) selecting {label_selector or only or 'all'}")

    def _all(self) -> list[Informer]:
        return [i for group in self._informers.values() for i in group]

    def wait_synced(self, timeout: float, kinds: list[str] | None = None) -> list[str]:
        """Wait (at most `timeout` s in all) for the first list of the informers of `kinds` (all
        when None); the kinds not synced."""
        deadline = time.monotonic() + timeout
        waited = [i for i in self._all() if kinds is None or i.kind in kinds]
        for informer in waited:
            informer.wait_synced(max(0.0, deadline - time.monotonic()))
        return [i.kind for i in waited if not i.has_synced()]

    def stop(self) -> None:
        for informer in self._all():
            informer.stop()
        self._events.flush()

    def post_event(self, body: dict) -> None:
        self._events.put(body)

    def _synced(self, api_version: str, kind: str) -> list[Informer]:
        return [i for i in self._informers.get((api_version, kind), ()) if i.has_synced()]

    def _for_object(self, api_version: str, kind: str, namespace: str | None,
                    name: str | None) -> Informer | None:
        """The synced informer that answers for that one object: one naming it, else one by selection."""
        synced = self._synced(api_version, kind)
        named = [i for i in synced if i.only is not None and i.holds(namespace, name)]
        return (named or [i for i in synced if i.only is None] or [None])[0]

    def _for_list(self, api_version: str, kind: str, label_selector: str | None = None) -> Informer | None:
        """A synced informer holding every object a list by `label_selector` would return."""
        wanted = parse(label_selector)
        return next((i for i in self._synced(api_version, kind)
                     if i.only is None and narrows(wanted, i.terms)), None)

    def caches(self, api_version: str, kind: str) -> bool:
        return self._for_list(api_version, kind) is not None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        informer = self._for_object(api_version, kind, namespace, name)
        if informer is None:
            return super().get(api_version, kind, name, namespace)
        obj = informer.store.get(namespace, name)
        if obj is None:
            raise NotFound(f'{kind} "{name}" not found')
        return copy.deepcopy(obj)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        informer = self._for_list(api_version, kind, label_selector)
        if informer is None:
            return super().list(api_version, kind, namespace, label_selector)
        wanted = parse(label_selector)
        return [copy.deepcopy(o) for o in informer.store.list(namespace)
                if matches((o.get("metadata") or {}).get("labels"), wanted)]

    def by_index(self, api_version: str, kind: str, index: str, value: str) -> list[dict]:
        """The cached objects filed under `value` by the index function named `index`."""
        return copy.deepcopy(self._for_list(api_version, kind).store.by_index(index, value))

    def remember(self, obj: dict, deleted: bool = False) -> None:
        """An object as someone else saw it (kopf's event body), newer than our watch may be yet."""
        meta = obj.get("metadata") or {}
        for informer in self._synced(obj.get("apiVersion", ""), obj.get("kind", "")):
            if not informer.holds(meta.get("namespace"), meta.get("name")):
                continue
            # An object outside the informer's selection would never be updated by its watch.
            gone = deleted or not informer.selects(obj)
            (informer.store.delete if gone else informer.store.upsert)(copy.deepcopy(obj))

    def apply(self, manifest: dict, force: bool = True) -> dict:
        informer = self._for_object(manifest["apiVersion"], manifest["kind"],
                                    manifest["metadata"].get("namespace"), manifest["metadata"]["name"])
        if informer is None:
            out = super().apply(manifest, force)
        else:
            manifest = stamped(manifest)
            meta = manifest["metadata"]
            held = informer.store.get(meta.get("namespace"), meta["name"])
            if not apply_needed(manifest, held):
                APPLIES_SKIPPED.labels(manifest["kind"]).inc()
                return copy.deepcopy(held)
            out = super().apply(manifest, force)
        self.remember(out)
        return out

    def create(self, manifest: dict) -> dict:
        out = super().create(manifest)
        self.remember(out)
        return out

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str | None,
                     status: dict, resource_version: str | None = None) -> dict:
        try:
            out = super().patch_status(api_version, kind, name, namespace, status, resource_version)
        except Conflict:
            # Our copy is older than the server's: take the server's now, so the retry decides
            # from it instead of waiting for the watch.
            try:
                self.remember(super().get(api_version, kind, name, namespace))
            except NotFound:
                pass  # gone: the watch's deletion will follow
            raise
        self.remember(out)
        return out

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None,
              body: dict) -> dict:
        out = super().patch(api_version, kind, name, namespace, body)
        self.remember(out)
        return out
