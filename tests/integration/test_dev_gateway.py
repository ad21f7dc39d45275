"""The dev gateway on the real local cluster: real nginx, HTTPRoutes with weighted backendRefs to
serving pods that the dev data plane runs on their loopback pod IPs, traffic from `dev traffic`."""

from __future__ import annotations

import statistics
import time

import pytest

from tests.integration.conftest import host_dataplane
from tests.integration.helpers import wait_for
from tugboat.dev.dataplane.plane import api_client_for
from tugboat.dev.gateway.controller import API_VERSION, CONTROLLER_NAME, GATEWAY_CLASS, DevGateway
from tugboat.dev.traffic import TrafficPlan, run_traffic, send_one

NS = "gw-test"
OTHER_NS = "gw-other"
pytestmark = pytest.mark.timeout(300)

# A stand-in for the serving runtime: answers POST /v1/generate with its release and track.
SERVER = """
import argparse, http.server, json, os
p = argparse.ArgumentParser(); p.add_argument("--port", type=int); p.add_argument("--host")
a = p.parse_args()
class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        self._send(200, {"ok": True})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, {"completion": "", "release": os.environ["RELEASE"], "track": os.environ["TRACK"]})
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((a.host, a.port), Handler).serve_forever()
"""


def serving(name: str, release: str, track: str, ns: str = NS) -> list[dict]:
    labels = {"app": name, "tugboat.dev/workload": "serve"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{
                "name": "serve", "image": "tugboat/serve:dev", "command": ["python", "-c", SERVER],
                "args": ["--port", "8080", "--host", "0.0.0.0"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "RELEASE", "value": release}, {"name": "TRACK", "value": track}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"selector": {"app": name},
                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [deployment, service]


def http_route(name: str, backend_refs: list[dict]) -> dict:
    return {"apiVersion": API_VERSION, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": NS},
            "spec": {"parentRefs": [{"name": "dev", "sectionName": "http"}],
                     "hostnames": [f"{name}.example.test"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                                "backendRefs": backend_refs}]}}


def backend(name: str, weight: int, namespace: str | None = None) -> dict:
    return {"name": name, "port": 80, "weight": weight, **({"namespace": namespace} if namespace else {})}


@pytest.fixture(scope="module")
def plane(cluster, kube, tmp_path_factory):
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER_NS}})
    yield from host_dataplane(cluster, kube, tmp_path_factory, NS)


@pytest.fixture(scope="module")
def gateway(cluster, kube, plane, tmp_path_factory):
    gw = DevGateway(api_client_for(cluster.kubeconfig), tmp_path_factory.mktemp("gateway")).start()
    kube.apply({"apiVersion": API_VERSION, "kind": "Gateway", "metadata": {"name": "dev", "namespace": NS},
                "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [
                    {"name": "http", "protocol": "HTTP", "port": 80}]}})
    for doc in serving("stable", "v1", "stable") + serving("canary", "v2", "canary") + \
            serving("elsewhere", "v9", "stable", ns=OTHER_NS):
        kube.apply(doc)
    yield gw
    gw.stop()


def traffic(gateway, host: str, count: int) -> TrafficPlan:
    return TrafficPlan(url=gateway.url, host=host, rate=200, duration=None, count=count, concurrency=4,
                       timeout=5)


def ours(route: dict) -> dict[str, dict]:
    parents = [p for p in (route.get("status") or {}).get("parents") or []
               if p["controllerName"] == CONTROLLER_NAME]
    return {c["type"]: c for c in parents[0]["conditions"]} if parents else {}


def route_status(kube, name: str) -> dict[str, dict]:
    return ours(kube.get(API_VERSION, "HTTPRoute", name, NS))


def serves_both(gateway, host: str) -> bool:
    report = run_traffic(traffic(gateway, host, 20))
    return {s.release for s in report.served if s.status == 200} == {"v1", "v2"}


def test_weights_split_real_traffic_and_status_is_written(gateway, kube):
    kube.apply(http_route("split", [backend("stable", 90), backend("canary", 10)]))
    host = "split.example.test"
    wait_for(lambda: serves_both(gateway, host), timeout=120, interval=1, what="both backends serving")
    report = run_traffic(traffic(gateway, host, 200))
    assert {s.status for s in report.served} == {200}
    # One nginx worker's smooth weighted round-robin: the split is exact, not only on average.
    assert abs(report.share("v2", "canary") - 0.10) <= 0.02, report.to_json()
    assert report.share("v1", "stable") + report.share("v2", "canary") == 1.0
    assert all(s.upstream.startswith("127.") for s in report.served), report.to_json()["byUpstream"]

    conds = route_status(kube, "split")
    assert (conds["Accepted"]["status"], conds["Accepted"]["reason"]) == ("True", "Accepted")
    assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == ("True", "ResolvedRefs")
    gw = kube.get(API_VERSION, "Gateway", "dev", NS)["status"]
    assert {c["type"]: c["status"] for c in gw["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    assert gw["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert gw["listeners"][0]["attachedRoutes"] >= 1
    gc = kube.get(API_VERSION, "GatewayClass", GATEWAY_CLASS)["status"]
    assert {c["type"]: c["status"] for c in gc["conditions"]}["Accepted"] == "True"
    # An unknown host matches no route: the default server answers 404.
    assert send_one(traffic(gateway, "nobody.example.test", 1), "1 2 3 4", "", time.monotonic()).status == 404


def test_a_weight_change_reaches_traffic_and_weight_zero_gets_none(gateway, kube):
    kube.apply(http_route("flip", [backend("stable", 100), backend("canary", 0)]))
    host = "flip.example.test"
    plan = traffic(gateway, host, 1)
    wait_for(lambda: send_one(plan, "1 2 3 4", "", time.monotonic()).release == "v1", timeout=60,
             what="flip routed")
    first, settled = [], []
    for stable, canary, new in ((0, 100, "v2"), (100, 0, "v1"), (0, 100, "v2"), (100, 0, "v1")):
        t0 = time.monotonic()
        kube.apply(http_route("flip", [backend("stable", stable), backend("canary", canary)]))
        in_a_row = 0
        # nginx's old worker still accepts for a moment after a reload: wait for 20 in a row.
        while in_a_row < 20:
            assert time.monotonic() - t0 < 30, "the weight change never reached the traffic"
            in_a_row = in_a_row + 1 if send_one(plan, "1 2 3 4", "", t0).release == new else 0
            if in_a_row == 1 and len(first) < len(settled) + 1:
                first.append(time.monotonic() - t0)
        settled.append(time.monotonic() - t0)
        report = run_traffic(traffic(gateway, host, 40))
        assert {s.release for s in report.served} == {new}, report.to_json()  # weight 0: no request
    ms = [round(x * 1000) for x in first]
    print(f"HTTPRoute weight patch -> first response from the new split: median {statistics.median(ms)} ms, "
          f"max {max(ms)} ms {ms}; -> every response from it: max {round(max(settled) * 1000)} ms")


def test_a_cross_namespace_ref_without_a_reference_grant_is_refused_and_answers_500(gateway, kube):
    kube.apply(http_route("cross", [backend("stable", 1), backend("elsewhere", 1, namespace=OTHER_NS)]))
    conds = wait_for(lambda: (c := route_status(kube, "cross")) and c, timeout=30, what="cross status")
    assert (conds["ResolvedRefs"]["status"], conds["ResolvedRefs"]["reason"]) == ("False", "RefNotPermitted")
    assert conds["Accepted"]["status"] == "True"
    report = run_traffic(traffic(gateway, "cross.example.test", 40))
    assert report.to_json()["byStatus"] == {"200": 20, "500": 20}  # the refused half answers 500

    kube.apply({"apiVersion": API_VERSION, "kind": "ReferenceGrant",
                "metadata": {"name": "from-gw-test", "namespace": OTHER_NS},
                "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                   "namespace": NS}],
                         "to": [{"group": "", "kind": "Service", "name": "elsewhere"}]}})
    wait_for(lambda: route_status(kube, "cross")["ResolvedRefs"]["status"] == "True", timeout=30,
             what="ResolvedRefs after the grant")
    wait_for(lambda: {s.release for s in run_traffic(traffic(gateway, "cross.example.test", 10)).served}
             == {"v1", "v9"}, timeout=60, interval=1, what="the granted backend serving")


def test_a_non_loopback_endpoint_is_never_a_target(gateway, kube):
    """A selector-less Service whose hand-made EndpointSlice points at 10.0.0.x: dropped, so its
    share answers 503 (no usable endpoint) and nginx never hears of the address."""
    kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "offbox", "namespace": NS},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    kube.apply({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": "offbox-1", "namespace": NS,
                             "labels": {"kubernetes.io/service-name": "offbox"}},
                "ports": [{"name": "http", "port": 8080}],
                "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": True}}]})
    kube.apply(http_route("offbox", [backend("offbox", 1)]))
    host = "offbox.example.test"
    wait_for(lambda: route_status(kube, "offbox").get("ResolvedRefs", {}).get("status") == "True",
             timeout=30, what="offbox route resolved")
    wait_for(lambda: send_one(traffic(gateway, host, 1), "1 2 3 4", "", time.monotonic()).status == 503,
             timeout=30, what="offbox routed")
    report = run_traffic(traffic(gateway, host, 20))
    assert report.to_json()["byStatus"] == {"503": 20}
    assert "10.0.0.7" not in gateway.nginx.conf.read_text()
    assert "10.0.0.7" not in (gateway.nginx.prefix / "logs" / "access.log").read_text()
