"""A Ready ModelRelease in the platform namespace drives its rollout on the real API server with a
real Prometheus: it finds the AgentDeployment of its line in a tenant namespace (and refuses one
whose Tenant does not allow the line), walks its steps on passing analysis, holds (inconclusive,
never promotes) while Prometheus is stopped and goes on once it is back, takes a person's pause
through `kubectl tugboat`, and ends Promoted; its events reach the AgentDeployment.

The serving side (canary Deployments, H5) is not needed here: the canary's window counters come
from a small exporter on 127.0.0.1 that the real Prometheus scrapes, labelled as the serving
runtime labels them; the release is made Ready and the deployments' stable release is written
to their status by hand. Passes are driven in-process (reconcilers.reconcile), sleeping each
outcome's requeue time, so the test does not depend on the operator's timers.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.integration.helpers import wait_for
from tests.integration.test_plugin import kubectl_plugin
from tugboat.api.base import API_VERSION
from tugboat.api.kinds import MODEL_RELEASE
from tugboat.api.model_release import AnalysisCheck, ModelReleaseStatus
from tugboat.controllers.reconcilers import reconcile
from tugboat.controllers.rollout_gather import Measurer, observe_check
from tugboat.controllers.settings import Settings
from tugboat.dev.dataplane import hostproc
from tugboat.dev.dataplane.scrape_targets import ScrapeTarget, ScrapeTargetServer
from tugboat.dev.prometheus import DevPrometheus
from tugboat.reconcile import model_release as mr
from tugboat.reconcile.outcome import set_conditions
from tugboat.rollout.decision import DueCheck
from tugboat.rollout.inputs import Target

PLATFORM, TEAM, OTHER = "ml-platform", "drive-a", "drive-b"
LINE, RELEASE, BAD = "moe-drive", "moe-drive-v2", "moe-drive-v3"
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def canary_metrics():
    """Window counters of a healthy canary (v2) and of one answering half its requests with 500
    (v3), each growing 20 requests a second while the tests run."""
    registry = CollectorRegistry()
    requests = Counter("tugboat_requests", "requests", ["release", "track", "tenant", "agent_deployment",
                                                        "code"], registry=registry)
    tokens = Counter("tugboat_tokens", "tokens", ["release", "track", "tenant", "agent_deployment"],
                     registry=registry)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    codes = itertools.cycle(("200", "500"))

    def serve():
        while not stop.wait(0.05):
            requests.labels(RELEASE, "canary", TEAM, "agent", "200").inc()
            tokens.labels(RELEASE, "canary", TEAM, "agent").inc(3)
            requests.labels(BAD, "canary", TEAM, "agent", next(codes)).inc()
            tokens.labels(BAD, "canary", TEAM, "agent").inc(3)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    stop.set()
    thread.join(5)
    server.shutdown()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, canary_metrics):
    targets = [ScrapeTarget(canary_metrics, TEAM, "agent-canary")]
    sd = ScrapeTargetServer(lambda: targets).start()
    prom = DevPrometheus(tmp_path_factory.mktemp("prometheus"), sd.url, port=hostproc.free_port()).start()
    yield prom
    prom.stop()
    sd.stop()


def _objects(kube):
    for ns in (PLATFORM, TEAM, OTHER):
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    def tenant(name, ns, lines):
        kube.apply({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
                    "spec": {"namespaces": [ns], "costCenter": "cc-1", "allowedModelLines": lines,
                             "rollout": {"wave": 0, "maxCanaryWeight": 60}}})
    for name, ns in (("drive-a", TEAM), ("drive-b", OTHER)):
        tenant(name, ns, [LINE])
        kube.apply({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                    "metadata": {"name": "agent", "namespace": ns}, "spec": {"modelLine": LINE}})
        kube.patch_status(API_VERSION, "AgentDeployment", "agent", ns, {"release": "moe-drive-v1"})
    # drive-b stops allowing the line after its deployment was admitted: the release must refuse it.
    tenant("drive-b", OTHER, ["other-line"])
    _ready_release(kube, RELEASE)


def _ready_release(kube, name: str) -> None:
    check = {"name": "error-rate", "metric": "ErrorRate", "threshold": 0.05, "window": "20s",
             "interval": "2s", "count": 1, "minRequests": 5, "inconclusiveLimit": 1}
    kube.apply({"apiVersion": API_VERSION, "kind": "ModelRelease",
                "metadata": {"name": name, "namespace": PLATFORM},
                "spec": {"modelLine": LINE, "source": {"trainingRun": "moe"},
                         "rollout": {"steps": [{"weight": 20, "pause": {"duration": "2s"}},
                                               {"weight": 80, "pause": {"duration": "2s"}}],
                                     "analysis": {"checks": [check]}}}})
    obj = kube.get(API_VERSION, "ModelRelease", name, PLATFORM)
    gen = obj["metadata"]["generation"]
    ready = ModelReleaseStatus(artifact_uri="file:///nowhere", manifest_digest="d" * 64)
    ready = set_conditions(ready, _now(), gen, *((t, True, "Done", "set by the test") for t in mr.STAGES))
    kube.patch_status(API_VERSION, "ModelRelease", name, PLATFORM,
                      ready.model_dump(by_alias=True, mode="json"))


def _now():
    from datetime import UTC, datetime
    return datetime.now(UTC)


def _drive(kube, settings, until, timeout: float, seen: list, name: str = RELEASE) -> dict:
    """Reconcile pass after pass (sleeping the requeue time) until `until(rollout)` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = reconcile(kube, MODEL_RELEASE, name, PLATFORM, settings)
        rollout = out.status.rollout.model_dump(by_alias=True, mode="json")
        seen.append((rollout.get("phase"), [t["weight"] for t in rollout["targets"]]))
        if until(rollout):
            return rollout
        time.sleep(min(out.requeue_after or 1.0, 2.0))
    raise AssertionError(f"rollout did not get there in {timeout}s: {seen[-5:]}")


def test_release_walks_holds_without_prometheus_and_is_promoted(cluster, kube, prometheus):
    _objects(kube)
    settings = Settings(prometheus_url=prometheus.url, release_namespaces=(PLATFORM,))
    seen: list = []
    started = time.monotonic()

    first = _drive(kube, settings, lambda r: r["targets"] and r["targets"][0]["weight"] == 20, 20, seen)
    (plan,) = first["targets"]  # drive-b's Tenant does not allow the line: not a target
    assert (plan["namespace"], plan["stableRelease"]) == (TEAM, "moe-drive-v1")
    assert plan["traffic"] == "ReplicaRatio"

    prometheus.stop()
    held = _drive(kube, settings, lambda r: r["phase"] == "Inconclusive", 30, seen)
    (plan,) = held["targets"]
    assert plan["weight"] == 20 and plan["state"] == "Inconclusive"
    assert "Prometheus did not answer" in plan["checks"][0]["last"]["message"]
    status = kube.get(API_VERSION, "ModelRelease", RELEASE, PLATFORM)["status"]
    assert status["phase"] == "Inconclusive"
    assert {c["type"]: c["status"] for c in status["conditions"]}["CanaryHealthy"] == "Unknown"
    prometheus.start()

    out = kubectl_plugin(cluster, "pause", "mr", RELEASE, "-n", PLATFORM)
    assert out.returncode == 0, out.stderr
    paused = _drive(kube, settings, lambda r: r["phase"] == "Paused", 20, seen)
    assert paused["paused"] and paused["targets"][0]["weight"] == 20
    assert kubectl_plugin(cluster, "resume", "mr", RELEASE, "-n", PLATFORM).returncode == 0

    done = _drive(kube, settings, lambda r: r["phase"] == "Promoted", 60, seen)
    assert done["targets"][0]["weight"] == 100 and done["exposure"]["requests"] > 0
    weights = [w[0] for _, w in seen if w]
    assert weights == sorted(weights) and set(weights) == {20, 60, 100}  # capped at 60, no jump
    obj = kube.get(API_VERSION, "ModelRelease", RELEASE, PLATFORM)
    assert obj["status"]["phase"] == "Promoted"
    assert obj["metadata"]["annotations"]["tugboat.dev/rollout-intent"].startswith("resume@")
    print(f"walk with a Prometheus outage and a pause took {time.monotonic() - started:.1f}s")

    events = wait_for(lambda: [e for e in kube.list("v1", "Event", TEAM)
                               if e["involvedObject"]["name"] == "agent"
                               and e["reason"] == "TargetPromoted"], what="event on the AgentDeployment")
    assert events[0]["message"].startswith(f"{RELEASE}: every step passed")

    shown = kubectl_plugin(cluster, "status", "mr", RELEASE, "-n", PLATFORM)
    assert shown.returncode == 0, shown.stderr
    assert f"{TEAM}/agent" in shown.stdout and "moe-drive-v1" in shown.stdout and "100%" in shown.stdout
    assert "error-rate (ErrorRate): Pass value 0 threshold 0.05 (AtMost)" in shown.stdout


def test_a_breaching_canary_is_rolled_back_with_the_breach_named(cluster, kube, prometheus):
    if prometheus.url is None:
        prometheus.start()
    _ready_release(kube, BAD)
    settings = Settings(prometheus_url=prometheus.url, release_namespaces=(PLATFORM,))
    seen: list = []
    done = _drive(kube, settings, lambda r: r["phase"] in ("RolledBack", "Promoted"), 30, seen, name=BAD)
    assert done["phase"] == "RolledBack", done
    assert [w for _, w in seen if w][-1] == [0] and max(w[0] for _, w in seen if w) == 20
    breach = done["breach"]
    assert (breach["check"], breach["metric"], breach["target"]) == ("error-rate", "ErrorRate", "agent")
    assert 0.3 < breach["value"] < 0.7 and breach["threshold"] == 0.05
    assert f'release="{BAD}"' in breach["query"] and 'track="canary"' in breach["query"]
    obj = kube.get(API_VERSION, "ModelRelease", BAD, PLATFORM)
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conds["RolledBack"]["status"] == "True"
    assert "error-rate (ErrorRate)" in conds["RolledBack"]["message"]
    warnings = wait_for(lambda: [e for e in kube.list("v1", "Event", TEAM)
                                 if e["involvedObject"]["name"] == "agent" and e["type"] == "Warning"
                                 and e["message"].startswith(f"{BAD}: canary weight 0")],
                        what="Warning on the AgentDeployment")
    assert "threshold 0.05" in warnings[0]["message"] and "query:" in warnings[0]["message"]


def test_invalid_promql_is_an_observation_error_with_prometheus_message(prometheus):
    if prometheus.url is None:
        prometheus.start()
    bad = AnalysisCheck(name="mine", metric="Custom", direction="AtMost", threshold=1,
                        query='sum(rate(tugboat_requests_total{release="$release"}[$window])')
    target = Target(namespace=TEAM, name="agent", tenant=TEAM, stable_release="moe-drive-v1")
    got = observe_check(Measurer(prometheus.url), DueCheck(TEAM, "agent", bad, "moe-drive-v1"),
                        RELEASE, target, _now())
    assert got.error.startswith("InvalidQuery: ") and "parse error" in got.error, got
    assert got.query == f'sum(rate(tugboat_requests_total{{release="{RELEASE}"}}[60s])'
