"""A thread-safe, indexed store of one kind's objects, keyed by (namespace, name).

Pure: no API calls. Every write names the object's resourceVersion and the newer one wins, so an
informer's watch, our own write answers and kopf's event bodies may arrive in any order. Deletions
leave a tombstone until the next full replace, so a late, older event cannot bring an object back.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

Key = tuple[str | None, str]
# An index function: the values an object is filed under (a model line, the namespaces it lists).
IndexFn = Callable[[dict], Iterable[str]]


def key_of(obj: dict) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace"), meta["name"]


def newer(candidate: str | None, current: str | None) -> bool:
    """Whether resourceVersion `candidate` is at least as new as `current`. Versions are opaque to
    clients by the API conventions, but every API server we meet (etcd's revision) gives integers;
    an unparsable one is taken as newer, since it came later."""
    if current is None or candidate is None:
        return True
    try:
        return int(candidate) >= int(current)
    except ValueError:
        return True


def _version(obj: dict) -> str | None:
    return obj["metadata"].get("resourceVersion")


class Store:
    def __init__(self, indexes: dict[str, IndexFn] | None = None):
        self._lock = threading.Lock()
        self._indexers = dict(indexes or {})
        self._objects: dict[Key, dict] = {}
        self._gone: dict[Key, str | None] = {}
        self._index: dict[str, defaultdict[str, set[Key]]] = {n: defaultdict(set) for n in self._indexers}

    def replace(self, objects: Iterable[dict]) -> list[tuple[str, dict]]:
        """A fresh list: the whole truth at one version, whatever came before. Returns what it
        changed as watch events would have said it (ADDED, MODIFIED, DELETED), for a relist after a
        gap in the watch."""
        with self._lock:
            before = self._objects
            self._objects, self._gone = {}, {}
            self._index = {n: defaultdict(set) for n in self._indexers}
            for obj in objects:
                self._put(key_of(obj), obj)
            changes = [("DELETED", o) for k, o in before.items() if k not in self._objects]
            for k, obj in self._objects.items():
                held = before.get(k)
                if held is None:
                    changes.append(("ADDED", obj))
                elif _version(held) != _version(obj):
                    changes.append(("MODIFIED", obj))
            return changes

    def upsert(self, obj: dict) -> bool:
        """Keep `obj` unless what we hold (or its deletion) is as new; True if it is news (a
        version the store did not hold: not the echo of a write whose answer is already here)."""
        key, rv = key_of(obj), obj["metadata"].get("resourceVersion")
        with self._lock:
            held = self._objects.get(key)
            if key in self._gone and not newer(rv, self._gone[key]):
                return False
            if held is not None and not newer(rv, _version(held)):
                return False
            self._gone.pop(key, None)
            self._drop(key)
            self._put(key, obj)
            return held is None or rv is None or _version(held) != rv

    def delete(self, obj: dict) -> None:
        key, rv = key_of(obj), obj["metadata"].get("resourceVersion")
        with self._lock:
            held = self._objects.get(key)
            if held is not None and not newer(rv, held["metadata"].get("resourceVersion")):
                return  # a newer incarnation (same name, created again) is already here
            self._drop(key)
            self._gone[key] = rv

    def get(self, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def list(self, namespace: str | None = None) -> list[dict]:
        with self._lock:
            return [o for (ns, _), o in self._objects.items() if namespace is None or ns == namespace]

    def by_index(self, index: str, value: str) -> list[dict]:
        with self._lock:
            return [self._objects[k] for k in self._index[index].get(value, ())]

    def _put(self, key: Key, obj: dict) -> None:
        # Who set which field, kept by the server for server-side apply: nothing here reads it,
        # and it is often the largest part of an object.
        obj["metadata"].pop("managedFields", None)
        self._objects[key] = obj
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._index[name][value].add(key)

    def _drop(self, key: Key) -> None:
        old = self._objects.pop(key, None)
        if old is None:
            return
        for name, fn in self._indexers.items():
            for value in fn(old):
                keys = self._index[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index[name][value]
