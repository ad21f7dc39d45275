"""Informer control flow (list, watch from the list's version, relist on 410 Gone) and the cached
client's read-your-writes, with the API server's two calls replaced by scripted answers."""

from __future__ import annotations

import copy
import threading

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tugboat.kube import cache
from tugboat.kube.cached import CachedKube
from tugboat.kube.client import Kube
from tugboat.kube.errors import Conflict, NotFound

API = "tugboat.dev/v1alpha1"


def item(name: str, rv: str, phase: str = "Pending") -> dict:
    return {"apiVersion": API, "kind": "ModelRelease",
            "metadata": {"name": name, "namespace": "ml", "resourceVersion": rv},
            "spec": {"modelLine": "chat"}, "status": {"phase": phase}}


class ScriptedServer:
    """Lists answer in turn; each watch replays its script (an exception is raised there)."""

    def __init__(self, lists: list[list[dict]], watches: list[list]):
        self.lists, self.watches = lists, watches
        self.listed, self.watched_from = 0, []
        self.done = threading.Event()

    def list_cluster_custom_object(self, group, version, plural):
        items = self.lists[self.listed]
        self.listed += 1
        return {"metadata": {"resourceVersion": str(100 * self.listed)}, "items": items}

    def watch(self):
        server = self

        class Watch:
            def stream(self, func, *args, resource_version, **kwargs):
                server.watched_from.append(resource_version)
                if len(server.watched_from) > len(server.watches):
                    server.done.set()
                    raise ApiException(status=500, reason="script ended")
                for step in server.watches[len(server.watched_from) - 1]:
                    if isinstance(step, Exception):
                        raise step
                    yield step

            def stop(self):
                pass
        return Watch()


def run_informer(monkeypatch, server: ScriptedServer) -> cache.Informer:
    monkeypatch.setattr(cache, "_RawWatch", server.watch)
    monkeypatch.setattr(cache, "RETRY_SECONDS", 0.01)
    informer = cache.Informer(client.ApiClient(), API, "ModelRelease", "modelreleases")
    informer._custom = server
    informer.start()
    assert server.done.wait(5)
    informer.stop()
    return informer


def test_relists_after_410_gone_and_resumes_from_the_last_version(monkeypatch):
    gone = ApiException(status=410, reason="Expired")
    server = ScriptedServer(
        lists=[[item("a", "90")], [item("b", "150")]],
        watches=[[{"type": "ADDED", "raw_object": item("c", "120")},
                  {"type": "BOOKMARK", "raw_object": {"metadata": {"resourceVersion": "130"}}}, gone],
                 []])
    informer = run_informer(monkeypatch, server)
    assert server.listed == 2
    # first watch from the list's version; after 410 a fresh list, then a watch from its version
    assert server.watched_from[:2] == ["100", "200"]
    names = sorted(o["metadata"]["name"] for o in informer.store.list())
    assert names == ["b"]  # the relist replaced what the expired watch had added
    assert informer.has_synced()


def test_a_watch_ended_by_the_server_resumes_from_its_last_event(monkeypatch):
    server = ScriptedServer(lists=[[]], watches=[[{"type": "ADDED", "raw_object": item("a", "140")}], []])
    run_informer(monkeypatch, server)
    assert server.listed == 1 and server.watched_from[:2] == ["100", "140"]


@pytest.fixture
def cached(monkeypatch) -> CachedKube:
    kube = CachedKube(client.ApiClient())
    informer = cache.Informer(kube.api, API, "ModelRelease", "modelreleases")
    informer.store.replace([item("a", "10")])
    informer._synced.set()  # as after its first list; no thread runs
    kube._informers[(API, "ModelRelease")] = [informer]
    return kube


def test_reads_come_from_the_store_as_copies(cached):
    got = cached.get(API, "ModelRelease", "a", "ml")
    got["status"]["phase"] = "changed by a caller"
    assert cached.get(API, "ModelRelease", "a", "ml")["status"]["phase"] == "Pending"
    assert cached.get_or_none(API, "ModelRelease", "b", "ml") is None
    with pytest.raises(NotFound):
        cached.get(API, "ModelRelease", "b", "ml")


def test_own_status_write_is_read_back_at_once_and_a_stale_answer_loses(cached, monkeypatch):
    monkeypatch.setattr(Kube, "patch_status", lambda self, *a, **k: item("a", "12", "Exporting"))
    cached.patch_status(API, "ModelRelease", "a", "ml", {"phase": "Exporting"}, "10")
    assert cached.get(API, "ModelRelease", "a", "ml")["status"]["phase"] == "Exporting"
    cached.remember(item("a", "11", "Pending"))  # a watch event older than our write
    assert cached.get(API, "ModelRelease", "a", "ml")["status"]["phase"] == "Exporting"


def test_a_conflict_takes_the_servers_copy_for_the_retry(cached, monkeypatch):
    def refuse(self, *a, **k):
        raise Conflict("the object has been modified")
    monkeypatch.setattr(Kube, "patch_status", refuse)
    monkeypatch.setattr(Kube, "get", lambda self, *a, **k: item("a", "20", "Signing"))
    with pytest.raises(Conflict):
        cached.patch_status(API, "ModelRelease", "a", "ml", {"phase": "Exporting"}, "10")
    assert cached.get(API, "ModelRelease", "a", "ml")["metadata"]["resourceVersion"] == "20"


def deployment(rv: str, replicas: int = 1, managed: bool = True, **annotations: str) -> dict:
    labels = {"app.kubernetes.io/managed-by": "tugboat"} if managed else {"app": "mine"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "team-a", "resourceVersion": rv, "labels": labels,
                         "annotations": annotations},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c"}]}}}}


@pytest.fixture
def children(monkeypatch):
    """A cached child kind (managed objects only) and a counter of the applies that reach the server."""
    kube = CachedKube(client.ApiClient())
    informer = cache.Informer(kube.api, "apps/v1", "Deployment", "deployments",
                              label_selector="app.kubernetes.io/managed-by=tugboat")
    informer._synced.set()
    kube._informers[("apps/v1", "Deployment")] = [informer]
    sent = []

    def apply(self, manifest, force=True):
        sent.append(manifest)
        out = copy.deepcopy(manifest)
        out["metadata"]["resourceVersion"] = str(10 + len(sent))
        out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"  # a default
        return out
    monkeypatch.setattr(Kube, "apply", apply)
    return kube, sent


def test_an_apply_the_cached_child_already_matches_is_not_sent(children):
    kube, sent = children
    desired = deployment("", replicas=2)
    del desired["metadata"]["resourceVersion"]
    kube.apply(desired)
    kube.apply(copy.deepcopy(desired))  # same manifest, the server's defaults in the cache
    assert len(sent) == 1
    changed = copy.deepcopy(desired)
    changed["spec"]["replicas"] = 3
    kube.apply(changed)
    assert len(sent) == 2 and sent[1]["spec"]["replicas"] == 3


def test_drift_by_someone_else_or_a_field_we_stopped_declaring_is_applied(children):
    kube, sent = children
    desired = deployment("", replicas=2, note="ours")
    kube.apply(desired)
    held = kube.get("apps/v1", "Deployment", "d", "team-a")
    held["spec"]["replicas"] = 5  # scaled by hand: the watch brings it
    held["metadata"]["resourceVersion"] = "50"
    kube.remember(held)
    kube.apply(desired)
    assert len(sent) == 2
    fewer = copy.deepcopy(desired)
    del fewer["metadata"]["annotations"]["note"]  # the cached object still has it: apply removes it
    kube.apply(fewer)
    assert len(sent) == 3


def test_an_object_outside_the_informers_selection_is_not_kept(children):
    kube, _ = children
    kube.remember(deployment("7"))
    assert kube.get_or_none("apps/v1", "Deployment", "d", "team-a") is not None
    kube.remember(deployment("8", managed=False))  # our label removed: the watch says no more of it
    assert kube.get_or_none("apps/v1", "Deployment", "d", "team-a") is None
