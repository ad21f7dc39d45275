"""The operator's cost grows with the work, not with the objects (issue #12), on its own cluster
(objects other modules leave on the shared one may rightly poll): once a mix of settled objects
is reconciled, an idle operator sends the API server nothing but its watches, and a spec change
still reaches status at once."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bench.scale_mix import API, build, is_counted
from tests.integration.conftest import operator_starter, running_cluster
from tests.integration.helpers import wait_for
from tugboat.dev.tools import repo_root
from tugboat.kube.client import Kube

N = 20  # 1 Tenant, 10 AgentDeployments, 5 ModelReleases waiting on training, 4 TrainingRuns starting
IDLE_SECONDS = 10


@pytest.fixture(scope="module")
def idle_cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory, "idle")


@pytest.fixture(scope="module")
def start(idle_cluster, tmp_path_factory):
    yield from operator_starter(idle_cluster, tmp_path_factory)


def requests_sent(op) -> dict[tuple[str, str], float]:
    """tugboat_api_requests_total by (verb, kind): every request of the operator's own client."""
    with urllib.request.urlopen(f"http://{op.metrics_address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(s.labels["verb"], s.labels["kind"]): s.value
            for family in text_string_to_metric_families(text) if family.name == "tugboat_api_requests"
            for s in family.samples if s.name == "tugboat_api_requests_total"}


def quiet(op, seconds: float) -> bool:
    before = requests_sent(op)
    time.sleep(seconds)
    return requests_sent(op) == before


def settled(obj: dict) -> bool:
    st = obj.get("status") or {}
    return bool(st.get("conditions")) and st.get("observedGeneration") == obj["metadata"].get("generation")


@pytest.fixture(scope="module")
def settled_mix(idle_cluster, start):
    """The scale benchmark's mix at N objects, every one of them reconciled."""
    kube = Kube.connect(str(idle_cluster.kubeconfig))
    idle_cluster.kubectl("apply", "-f", str(repo_root() / "examples" / "00-namespaces.yaml"))
    op = start("--standalone")
    op.wait_for_log("tugboat operator: priority")
    docs = build(N, prefix="idle")
    for doc in docs:
        kube.apply(doc)
    counted = [d for d in docs if is_counted(d)]

    def all_settled() -> bool:
        return all(settled(kube.get(API, d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")))
                   for d in counted)
    wait_for(all_settled, timeout=120, interval=0.5, what=f"all {len(counted)} objects settled")
    return kube, op, counted


def test_an_idle_operator_sends_nothing_but_its_watches(settled_mix):
    _, op, _ = settled_mix
    # The last passes' own writes come back as watch events: let their passes finish first.
    wait_for(lambda: quiet(op, 2), timeout=60, interval=0, what="the passes after the objects settled")
    before = requests_sent(op)
    assert sum(before.values()) > 0, "the operator's request counter is missing: nothing to compare"
    time.sleep(IDLE_SECONDS)
    sent = {k: v - before.get(k, 0) for k, v in requests_sent(op).items() if v - before.get(k, 0)}
    assert sent == {}, f"an idle operator polled: {sent}"


def test_a_spec_change_reaches_status_at_once(settled_mix):
    """Woken by its watch event, not a poll: well under the 2 s bound even on a busy CI machine
    (the issue's 1 s p99 target is what the scale benchmark measures)."""
    kube, _, counted = settled_mix
    agents = [d for d in counted if d["kind"] == "AgentDeployment"][:3]
    for i, agent in enumerate(agents):
        name, ns = agent["metadata"]["name"], agent["metadata"]["namespace"]
        started = time.monotonic()
        gen = kube.patch(API, "AgentDeployment", name, ns,
                         {"spec": {"replicas": 2 + i}})["metadata"]["generation"]
        wait_for(lambda n=name, s=ns, g=gen: (kube.get(API, "AgentDeployment", n, s).get("status") or {})
                 .get("observedGeneration") == g, timeout=10, interval=0.05, what=f"{name} status caught up")
        took = time.monotonic() - started
        assert took < 2.0, f"{name}: {took:.2f} s from spec change to status"
