"""The dev data plane runs serving pods on their loopback pod IPs and container ports and makes
them Ready only when they answer."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from tests.integration.conftest import host_dataplane
from tests.integration.helpers import wait_for
from tugboat.dev.loopback import is_loopback

NS = "dp-serve"
pytestmark = pytest.mark.timeout(180)

# Listens only once the test creates the "go" file, so "not Ready yet" is observable for certain.
SERVER = """
import argparse, http.server, os, sys, time
p = argparse.ArgumentParser(); p.add_argument("--port", type=int); p.add_argument("--host")
p.add_argument("--go"); a = p.parse_args()
while not os.path.exists(a.go):
    time.sleep(0.2)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/readyz": b"ok", "/hello": ("hello from %s" % os.environ["WHO"]).encode()}.get(self.path)
        self.send_response(200 if body else 404); self.end_headers(); self.wfile.write(body or b"")
    def log_message(self, *args):
        pass
print("listening on", a.host, a.port, flush=True)
http.server.HTTPServer((a.host, a.port), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def plane(cluster, kube, tmp_path_factory):
    yield from host_dataplane(cluster, kube, tmp_path_factory, NS)


def deployment(go_file: str) -> dict:
    labels = {"app": "tiny-llm", "tugboat.dev/workload": "serve"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tiny-llm", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "tiny-llm"}}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{
                "name": "server", "image": "tugboat/serve:dev", "command": ["python", "-c", SERVER],
                # --port/--host are the cluster's; the data plane binds the pod IP and containerPort.
                "args": ["--port", "9999", "--host", "0.0.0.0", "--go", go_file],
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "WHO", "value": "tiny-llm"}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}]}}},
    }


def serving_pod(kube):
    pods = [p for p in kube.list("v1", "Pod", NS, label_selector="app=tiny-llm")
            if not p["metadata"].get("deletionTimestamp")]
    return pods[0] if pods else None


def deployment_status(kube) -> dict:
    return kube.get("apps/v1", "Deployment", "tiny-llm", NS).get("status") or {}


def ready(pod: dict) -> str | None:
    return {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}.get("Ready")


def _entry(plane, key: str) -> dict | None:
    return json.loads(plane.endpoints_json.read_text()).get(key) if plane.endpoints_json.exists() else None


def test_serving_pod_binds_its_loopback_pod_ip_and_becomes_ready_only_when_it_answers(plane, kube, tmp_path):
    go = tmp_path / "go"
    t0 = time.monotonic()
    kube.apply(deployment(str(go)))
    pod = wait_for(lambda: (p := serving_pod(kube)) and (p.get("status") or {}).get("podIP") and p,
                   timeout=60, what="a pod IP")
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    assert is_loopback(ip) and not ip.startswith("127.0."), ip  # kwok's pod CIDR of this cluster
    entry = wait_for(lambda: _entry(plane, f"{NS}/{name}"), timeout=60, what="the data plane runs the pod")
    assert (entry["ip"], entry["port"], entry["service"]) == (ip, 8080, "tiny-llm")
    os.kill(entry["pid"], 0)  # the process is alive

    time.sleep(2)  # several probe passes: a process that does not answer stays unready
    pod = serving_pod(kube)
    assert pod["status"]["phase"] == "Running" and ready(pod) == "False"
    assert deployment_status(kube).get("readyReplicas") in (None, 0)

    go.write_text("go")
    wait_for(lambda: deployment_status(kube).get("availableReplicas") == 1, timeout=60,
             what="Deployment available")
    print(f"serving Deployment apply -> Available {time.monotonic() - t0:.1f}s (incl. 2s held unready)")
    assert ready(serving_pod(kube)) == "True"
    with urllib.request.urlopen(f"http://{ip}:8080/hello", timeout=5) as resp:
        assert resp.read() == b"hello from tiny-llm"

    kube.delete("apps/v1", "Deployment", "tiny-llm", NS)

    def process_gone():
        try:
            os.kill(entry["pid"], 0)
            return False
        except ProcessLookupError:
            return f"{NS}/{name}" not in json.loads(plane.endpoints_json.read_text())
    wait_for(process_gone, timeout=60, what="serving process stopped")
