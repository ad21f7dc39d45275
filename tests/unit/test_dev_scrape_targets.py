"""HTTP service discovery of the dev data plane: serving processes as Prometheus target groups."""

import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass

from tugboat.dev.dataplane.scrape_targets import (
    ScrapeTarget,
    ScrapeTargetServer,
    build_target_groups,
    serving_targets,
)

POD_LABELS = {"tugboat.dev/release": "moe-v2", "tugboat.dev/track": "canary", "tugboat.dev/tenant": "team-a",
              "tugboat.dev/agent-deployment": "arith", "app.kubernetes.io/name": "tugboat-serve"}


def test_a_target_carries_the_pod_and_its_tugboat_identity():
    target = ScrapeTarget("127.0.0.1:4000", "team-a", "arith-abc", POD_LABELS,
                          {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics"})
    assert build_target_groups([target]) == [{"targets": ["127.0.0.1:4000"], "labels": {
        "namespace": "team-a", "pod": "arith-abc", "release": "moe-v2", "track": "canary",
        "tenant": "team-a", "agent_deployment": "arith", "__metrics_path__": "/metrics"}}]


def test_pods_opting_out_are_left_out_and_the_order_is_stable():
    a = ScrapeTarget("127.0.0.1:1", "ns", "b")
    b = ScrapeTarget("127.0.0.1:2", "ns", "a")
    off = ScrapeTarget("127.0.0.1:3", "ns", "c", annotations={"prometheus.io/scrape": "false"})
    assert [g["labels"]["pod"] for g in build_target_groups([a, off, b])] == ["a", "b"]


@dataclass
class FakeServer:  # the fields of serving.Server that discovery reads
    pod: dict
    ip: str  # the pod's loopback IP the process binds
    port: int
    proc: subprocess.Popen | None


def test_only_live_serving_processes_are_targets():
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pod = lambda name: {"metadata": {"namespace": "ns", "name": name, "labels": POD_LABELS}}  # noqa: E731
    try:
        targets = serving_targets([FakeServer(pod("up"), "127.42.7.3", 8080, live),
                                   FakeServer(pod("crashed"), "127.42.7.4", 8080, dead),
                                   FakeServer(pod("starting"), "127.42.7.5", 8080, None)])
    finally:
        live.kill()
        live.wait()
    assert [(t.pod, t.address) for t in targets] == [("up", "127.42.7.3:8080")]


def test_the_server_answers_the_current_targets_on_loopback():
    current = [ScrapeTarget("127.0.0.1:1", "ns", "p1")]
    server = ScrapeTargetServer(lambda: current).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        read = lambda: json.load(urllib.request.urlopen(server.url, timeout=5))  # noqa: E731
        assert read() == [{"targets": ["127.0.0.1:1"], "labels": {"namespace": "ns", "pod": "p1"}}]
        current.append(ScrapeTarget("127.0.0.1:2", "ns", "p2"))
        assert [g["targets"] for g in read()] == [["127.0.0.1:1"], ["127.0.0.1:2"]]
    finally:
        server.stop()
