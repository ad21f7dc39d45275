"""`tugboat report` against real sources: the objects in a real API server, metric history in a
real MLflow server, request series in a real Prometheus scraping two live exporters (a stable and
a canary track of one tenant), then the written file checked in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.integration.helpers import wait_for
from tests.report_browser import inspect
from tugboat.analysis.prometheus import Prometheus
from tugboat.analysis.results import Value
from tugboat.api.base import API_VERSION
from tugboat.dev.dataplane.scrape_targets import ScrapeTarget, ScrapeTargetServer
from tugboat.dev.prometheus import DevPrometheus
from tugboat.report.gather import gather_release
from tugboat.report.model import Series

NS, RUN, RELEASE, TENANT = "report-it", "moe-r", "moe-r-v2", "team-r"
STABLE_RATE, CANARY_RATE = 3, 1  # requests per second: the canary serves a quarter
DATA = {"uri": "builtin://arithmetic?samples=64&seed=0", "sha256": "0" * 64}
pytestmark = pytest.mark.timeout(600)


def _exporter(release: str, track: str, per_second: int, stop: threading.Event):
    """A live /metrics whose request counter grows at `per_second`; identity labels come from
    the scrape target, as the data plane's serving pods get them."""
    registry = CollectorRegistry()
    requests = Counter("tugboat_requests_total", "requests", ["code"], registry=registry).labels(code="200")
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)

    def tick():
        while not stop.wait(1.0 / per_second):
            requests.inc()
    threading.Thread(target=tick, daemon=True).start()
    labels = {"tugboat.dev/release": release, "tugboat.dev/track": track, "tugboat.dev/tenant": TENANT,
              "tugboat.dev/agent-deployment": "agent"}
    return ScrapeTarget(f"127.0.0.1:{server.server_port}", TENANT, f"{release}-{track}", labels), server


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    stop = threading.Event()
    exporters = [_exporter("moe-r-v1", "stable", STABLE_RATE, stop),
                 _exporter(RELEASE, "canary", CANARY_RATE, stop)]
    targets = [target for target, _ in exporters]
    sd = ScrapeTargetServer(lambda: targets).start()
    prom = DevPrometheus(tmp_path_factory.mktemp("prometheus"), sd.url).start()
    client = Prometheus(prom.url)
    # rate() over 1m needs a few scrapes of both tracks.
    wait_for(lambda: isinstance(r := client.query(
        f'count(rate(tugboat_requests_total{{tenant="{TENANT}"}}[1m]) > 0)'), Value) and r.value == 2,
        timeout=60, what="both tracks scraped")
    time.sleep(6)
    yield prom.url
    prom.stop()
    sd.stop()
    stop.set()
    for _, server in exporters:
        server.shutdown()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, reason: str, message: str) -> dict:
    return {"type": type_, "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": _now(), "observedGeneration": 1}


def _objects(kube, run_id: str) -> None:
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube.apply({"apiVersion": API_VERSION, "kind": "TrainingRun", "metadata": {"name": RUN, "namespace": NS},
                "spec": {"data": DATA,
                         "routerHealth": {"maxImbalance": 1.5, "minEntropy": 1.0}}})
    kube.patch_status(API_VERSION, "TrainingRun", RUN, NS, {
        "phase": "Succeeded", "step": 29, "mlflowRunId": run_id, "metrics": {"loss": 0.7},
        "conditions": [_condition("Trained", "Succeeded", "trained 30 steps")]})
    kube.apply({"apiVersion": API_VERSION, "kind": "ModelRelease",
                "metadata": {"name": RELEASE, "namespace": NS},
                "spec": {"modelLine": "moe-r", "source": {"trainingRun": RUN}}})
    query = f'sum(rate(tugboat_requests_total{{release="{RELEASE}",track="canary"}}[1m]))'
    measurement = {"check": "canary-rate", "metric": "ErrorRate", "query": query, "value": 1.0,
                   "threshold": 5.0, "direction": "max", "verdict": "Pass", "time": _now()}
    kube.patch_status(API_VERSION, "ModelRelease", RELEASE, NS, {
        "phase": "RollingOut", "manifestDigest": "ab" * 32, "artifactUri": "file:///artifacts/moe-r-v2",
        "graphs": [{"name": "fp32", "file": "model.onnx", "published": True, "top1Agreement": 1.0,
                    "probeTop1Agreement": 1.0, "maxAbsError": 2e-6}],
        "conditions": [_condition("Signed", "Signed", "signed"), _condition("Verified", "Verified", "ok")],
        "rollout": {"phase": "Progressing", "weight": 25, "targets": [
            {"namespace": TENANT, "name": "agent", "tenant": TENANT, "wave": 0, "weight": 25,
             "checks": [{"name": "canary-rate", "passes": 1, "last": measurement}]}]}})


def _mlflow_run(uri: str) -> str:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment(f"report-{time.time_ns()}"))
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now + step, step) for step in range(30) for key, value in (
        ("loss", 3.0 / (step + 1)), ("tokens_per_second", 900.0 + step),
        ("expert_load_imbalance", 1.8 - step / 30), ("router_entropy", 0.9 + step / 60),
        ("expert_load_0", 0.3), ("expert_load_1", 0.2), ("expert_load_2", 0.25), ("expert_load_3", 0.25))]
    for i in range(0, len(metrics), 500):
        client.log_batch(run.info.run_id, metrics=metrics[i:i + 500])
    return run.info.run_id


def test_report_of_a_release_from_real_sources(cluster, kube, mlflow, prometheus, tmp_path):
    _objects(kube, _mlflow_run(mlflow))

    data = gather_release(kube, NS, RELEASE, mlflow, prometheus, time.time())
    assert [s.label for s in data.weights] == [TENANT]
    weight = [v for v in data.weights[0].y if v == v][-1]
    assert 15 < weight < 35, data.weights  # a quarter of the tenant's requests
    assert isinstance(data.analysis[0].series, Series) and data.analysis[0].series.y
    assert data.training.history["loss"][0] == 3.0

    out = tmp_path / "release.html"
    subprocess.run([sys.executable, "-m", "tugboat", "report", f"modelrelease/{RELEASE}", "-n", NS,
                    "-o", str(out), "--kubeconfig", str(cluster.kubeconfig), "--mlflow-uri", mlflow,
                    "--prometheus-url", prometheus], check=True, timeout=120)
    shot = tmp_path / "release.png"
    found = inspect(out, shot)
    print(f"screenshot: {shot}")
    assert found["resources"] == []
    sections = found["sections"]
    for key in ("export-parity", "rollout-weights", "analysis", "loss", "expert-load", "router-health"):
        assert [p["drawn"] for p in sections[key]["plots"]] == [True], (key, sections[key])
    assert sections["decision"]["missing"] == [
        "No decision: the rollout is Progressing: neither promoted nor rolled back"]


def test_report_of_a_run_without_mlflow_says_so(cluster, kube, tmp_path, monkeypatch):
    monkeypatch.delenv("TUGBOAT_MLFLOW_URI", raising=False)
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kube.apply({"apiVersion": API_VERSION, "kind": "TrainingRun",
                "metadata": {"name": "no-history", "namespace": NS},
                "spec": {"data": DATA}})
    out = tmp_path / "run.html"
    subprocess.run([sys.executable, "-m", "tugboat", "report", "tr/no-history", "-n", NS, "-o", str(out),
                    "--kubeconfig", str(cluster.kubeconfig)], check=True, timeout=120)
    sections = inspect(out, tmp_path / "run.png")["sections"]
    for key in ("loss", "expert-load", "router-health"):
        assert sections[key]["plots"] == []
        assert "no MLflow tracking URI given" in sections[key]["missing"][0]


def test_report_refuses_an_unknown_kind_and_a_missing_object(cluster, tmp_path):
    base = [sys.executable, "-m", "tugboat", "report", "-n", NS, "-o", str(tmp_path / "x.html"),
            "--kubeconfig", str(cluster.kubeconfig)]
    bad = subprocess.run([*base[:4], "deployment/x", *base[4:]], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "expected trainingrun/NAME or modelrelease/NAME" in bad.stderr
    gone = subprocess.run([*base[:4], "mr/absent", *base[4:]], capture_output=True, text=True, timeout=120)
    assert gone.returncode == 1 and "tugboat report:" in gone.stderr and not (tmp_path / "x.html").exists()
