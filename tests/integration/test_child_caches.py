"""The operator's caches of the kinds it reads besides its own, on the real API server: a child
kind selected by our label, the one trusted-key ConfigMap, and applies skipped only while the
cached object already is what we declare (drift by someone else is put back)."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.integration.helpers import wait_for
from tugboat.kube.cached import CachedKube
from tugboat.metrics import API_REQUESTS, APPLIES_SKIPPED

NS = "child-cache"
MANAGED = "app.kubernetes.io/managed-by=tugboat"


def deployment(name: str, replicas: int, managed: bool = True) -> dict:
    labels = {"app": name, **({"app.kubernetes.io/managed-by": "tugboat"} if managed else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "serve:1"}]}}}}


@pytest.fixture(scope="module")
def cached(cluster):
    cluster.kubectl("create", "namespace", NS, check=False)
    kube = CachedKube.connect(str(cluster.kubeconfig))
    kube.cache("apps/v1", "Deployment", "deployments", label_selector=MANAGED)
    kube.cache("v1", "ConfigMap", "configmaps", only=(NS, "trust"))
    assert kube.wait_synced(30) == []
    yield kube
    kube.stop()


def skipped() -> float:
    return APPLIES_SKIPPED.labels("Deployment")._value.get()


def server_replicas(cluster, name: str) -> int:
    return int(cluster.kubectl("get", "deployment", name, "-n", NS, "-o", "jsonpath={.spec.replicas}").stdout)


def test_only_our_labelled_children_are_cached(cluster, cached):
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(deployment("theirs", 1, managed=False)))
    cached.apply(deployment("ours", 1))
    wait_for(lambda: cached.get_or_none("apps/v1", "Deployment", "ours", NS), what="ours in the cache")
    assert cached.get_or_none("apps/v1", "Deployment", "theirs", NS) is None  # not selected: not ours
    lists = API_REQUESTS.labels("list", "Deployment")._value.get()
    mine = cached.list("apps/v1", "Deployment", NS, label_selector=f"{MANAGED},app=ours")
    assert {d["metadata"]["name"] for d in mine} == {"ours"}
    assert API_REQUESTS.labels("list", "Deployment")._value.get() == lists  # answered from the cache
    # A list wider than the cache's selection is the API server's to answer: theirs is in it.
    assert {d["metadata"]["name"] for d in cached.list("apps/v1", "Deployment", NS)} == {"ours", "theirs"}
    assert API_REQUESTS.labels("list", "Deployment")._value.get() == lists + 1


def test_an_unchanged_apply_is_skipped_and_drift_is_put_back(cluster, cached):
    desired = deployment("drift", 2)
    cached.apply(copy.deepcopy(desired))
    before = skipped()
    cached.apply(copy.deepcopy(desired))  # the server's defaults are in the cached copy: still equal
    assert skipped() == before + 1
    cluster.kubectl("scale", "deployment", "drift", "-n", NS, "--replicas=5")
    wait_for(lambda: cached.get("apps/v1", "Deployment", "drift", NS)["spec"]["replicas"] == 5,
             what="the hand-made scale reaching the cache through the watch")
    cached.apply(copy.deepcopy(desired))
    assert skipped() == before + 1 and server_replicas(cluster, "drift") == 2
    fewer = copy.deepcopy(desired)
    fewer["metadata"]["labels"].pop("app")  # no longer declared: the apply (not a skip) removes it
    cached.apply(fewer)
    got = cluster.kubectl("get", "deployment", "drift", "-n", NS, "-o", "jsonpath={.metadata.labels}").stdout
    assert '"app"' not in got, got


def test_the_trusted_key_configmap_is_cached_alone(cluster, cached):
    def config_map(name: str, pem: str) -> str:
        return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name, "namespace": NS}, "data": {"public.pem": pem}})
    cluster.kubectl("apply", "-f", "-", input=config_map("trust", "key-1"))
    cluster.kubectl("apply", "-f", "-", input=config_map("other", "x"))
    def held() -> dict | None:
        return (cached.get_or_none("v1", "ConfigMap", "trust", NS) or {}).get("data")
    wait_for(lambda: held() == {"public.pem": "key-1"}, what="the trust ConfigMap in the cache")
    assert cached.get("v1", "ConfigMap", "other", NS)["data"] == {"public.pem": "x"}  # from the API server
    cluster.kubectl("apply", "-f", "-", input=config_map("trust", "key-2"))
    wait_for(lambda: cached.get("v1", "ConfigMap", "trust", NS)["data"] == {"public.pem": "key-2"},
             what="the rotated key reaching the cache")
    cluster.kubectl("delete", "configmap", "trust", "-n", NS)
    wait_for(lambda: cached.get_or_none("v1", "ConfigMap", "trust", NS) is None, what="the deletion")


def test_subscribers_hear_changes_made_by_others_and_deletions(cluster, cached):
    heard: list[tuple[str, str, int]] = []
    cached.informer("apps/v1", "Deployment", MANAGED).subscribe(
        lambda type_, obj: heard.append((type_, obj["metadata"]["name"], obj["spec"]["replicas"])))
    cached.apply(deployment("told", 1))
    cluster.kubectl("scale", "deployment", "told", "-n", NS, "--replicas=3")  # someone else's change
    wait_for(lambda: ("MODIFIED", "told", 3) in heard, what="the hand-made scale told to the subscriber")
    cluster.kubectl("delete", "deployment", "told", "-n", NS)
    wait_for(lambda: any(t == "DELETED" and n == "told" for t, n, _ in heard), what="the deletion told")
    # (The echo of our own apply is not told when its answer is stored before its watch event comes:
    # a race with the watch, so only the store's side of it is tested, in test_kube_store.)
