"""`CachedKube`: the `Kube` interface with reads of the cached kinds answered from informers.

Everything else (other kinds, label selectors, writes) goes to the API server, except a
server-side apply of a cached kind whose object already is what we declare (drift.py). Read-your-writes:
the answer to our own apply or status patch goes into the store at once (the newer version wins),
so the next reconcile does not act on what it just replaced. Answers are copies: callers may
change them without touching the store.
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
from .store import IndexFn

log = logging.getLogger("tugboat.cache")


class CachedKube(Kube):
    def __init__(self, api_client: client.ApiClient):
        super().__init__(api_client)
        self._informers: dict[tuple[str, str], Informer] = {}

    def cache(self, api_version: str, kind: str, plural: str, indexes: dict[str, IndexFn] | None = None,
              label_selector: str | None = None, only: tuple[str, str] | None = None) -> Informer:
        """Serve reads of this kind from an informer (once it has listed). With `label_selector`
        the cache holds only the matching objects: a get of another answers NotFound. With `only`
        (namespace, name) it answers for that one object; the rest go to the API server."""
        informer = Informer(self.api, api_version, kind, plural, indexes, label_selector, only)
        self._informers[(api_version, kind)] = informer
        return informer.start()

    def wait_synced(self, timeout: float, kinds: list[str] | None = None) -> list[str]:
        """Wait (at most `timeout` s in all) for the first list of the informers of `kinds` (all
        when None); the kinds not synced."""
        deadline = time.monotonic() + timeout
        waited = [i for i in self._informers.values() if kinds is None or i.kind in kinds]
        for informer in waited:
            informer.wait_synced(max(0.0, deadline - time.monotonic()))
        return [i.kind for i in waited if not i.has_synced()]

    def stop(self) -> None:
        for informer in self._informers.values():
            informer.stop()

    def _informer(self, api_version: str, kind: str, namespace: str | None = None,
                  name: str | None = None, listing: bool = False) -> Informer | None:
        """The synced informer that may answer for that object (or, `listing`, for the whole kind)."""
        informer = self._informers.get((api_version, kind))
        if informer is None or not informer.has_synced():
            return None
        if informer.only is not None and (listing or not informer.holds(namespace, name)):
            return None
        return informer

    def _store(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None,
               listing: bool = False):
        informer = self._informer(api_version, kind, namespace, name, listing)
        return informer.store if informer is not None else None

    def caches(self, api_version: str, kind: str) -> bool:
        return self._store(api_version, kind, listing=True) is not None

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict:
        store = self._store(api_version, kind, namespace, name)
        if store is None:
            return super().get(api_version, kind, name, namespace)
        obj = store.get(namespace, name)
        if obj is None:
            raise NotFound(f'{kind} "{name}" not found')
        return copy.deepcopy(obj)

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        store = self._store(api_version, kind, listing=True)
        if store is None or label_selector is not None:
            return super().list(api_version, kind, namespace, label_selector)
        return copy.deepcopy(store.list(namespace))

    def by_index(self, api_version: str, kind: str, index: str, value: str) -> list[dict]:
        """The cached objects filed under `value` by the index function named `index`."""
        return copy.deepcopy(self._informers[(api_version, kind)].store.by_index(index, value))

    def remember(self, obj: dict, deleted: bool = False) -> None:
        """An object as someone else saw it (kopf's event body), newer than our watch may be yet."""
        meta = obj.get("metadata") or {}
        informer = self._informer(obj.get("apiVersion", ""), obj.get("kind", ""), meta.get("namespace"),
                                  meta.get("name"))
        if informer is not None:
            # An object outside the informer's selection would never be updated by its watch.
            gone = deleted or not informer.selects(obj)
            (informer.store.delete if gone else informer.store.upsert)(copy.deepcopy(obj))

    def apply(self, manifest: dict, force: bool = True) -> dict:
        store = self._store(manifest["apiVersion"], manifest["kind"], manifest["metadata"].get("namespace"),
                            manifest["metadata"]["name"])
        if store is None:
            out = super().apply(manifest, force)
        else:
            manifest = stamped(manifest)
            meta = manifest["metadata"]
            held = store.get(meta.get("namespace"), meta["name"])
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
