"""The dev cluster's real Prometheus: it scrapes the serving pods the data plane runs (found
through HTTP service discovery, loopback targets only) and answers the built-in analysis
queries with numbers; the client turns invalid PromQL and a stopped server into QueryErrors."""

from __future__ import annotations

import json
import math
import os
import time
import urllib.parse
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import host_dataplane
from tests.integration.helpers import wait_for
from tests.workloads.serve_fixtures import http_post_json, signed_artifacts  # noqa: F401
from tugboat.analysis import queries
from tugboat.analysis.prometheus import Prometheus
from tugboat.analysis.queries import Builtin, Slice
from tugboat.analysis.results import ErrorKind, NoData, NotANumber, QueryError, Value
from tugboat.dev.dataplane.scrape_targets import ScrapeTarget, ScrapeTargetServer
from tugboat.dev.prometheus import DevPrometheus

NS = "dp-prom"
WINDOW = 300  # longer than the test: every counter's whole life is inside the window
STABLE = Slice(release="moe-v1", track="stable", tenant="team-a", agent_deployment="arith")
CANARY = Slice(release="moe-v2", track="canary", tenant="team-a", agent_deployment="arith")
PROMPTS = ("3 7 11", "1 2 3 4", "14 15")  # the trained fixture model answers these correctly
STABLE_REQUESTS, CANARY_REQUESTS = 12, 6
pytestmark = pytest.mark.timeout(600)


def wait_value(prom: Prometheus, expr: str, want, timeout: float = 30) -> float:
    """Poll until `expr` answers a number `want(value)` accepts; the scrape interval is 1 s."""
    def check():
        result = prom.query(expr)
        return result if isinstance(result, Value) and want(result.value) else None
    return wait_for(check, timeout=timeout, interval=0.5, what=expr).value


# -- Prometheus alone, with targets the test chooses ---------------------------------------------

@pytest.fixture(scope="module")
def lone_prometheus(tmp_path_factory):
    targets: list[ScrapeTarget] = []
    sd = ScrapeTargetServer(lambda: targets).start()
    prom = DevPrometheus(tmp_path_factory.mktemp("prometheus"), sd.url).start()
    yield prom, targets
    prom.stop()
    sd.stop()


def discovered(url: str) -> tuple[set[str], set[str]]:
    with urllib.request.urlopen(f"{url}/api/v1/targets?state=any", timeout=5) as resp:
        data = json.load(resp)["data"]
    address = lambda t: t["discoveredLabels"]["__address__"]  # noqa: E731
    return {address(t) for t in data["activeTargets"]}, {address(t) for t in data["droppedTargets"]}


def test_the_loopback_guard_drops_every_other_target(lone_prometheus):
    prom, targets = lone_prometheus
    targets += [ScrapeTarget("127.0.0.1:9", "ns", "loopback"),
                ScrapeTarget("127.45.0.7:8080", "ns", "pod-ip"),
                ScrapeTarget("10.0.0.5:8080", "ns", "kwok-pod-ip"),
                ScrapeTarget("127.example.com:80", "ns", "a-host-name")]
    wait_for(lambda: sum(map(len, discovered(prom.url))) == 4, timeout=20, what="4 discovered targets")
    active, dropped = discovered(prom.url)
    assert active == {"127.0.0.1:9", "127.45.0.7:8080"}
    assert dropped == {"10.0.0.5:8080", "127.example.com:80"}


def test_invalid_promql_is_a_query_error_with_prometheus_message(lone_prometheus):
    prom, _ = lone_prometheus
    result = Prometheus(prom.url).query("sum(rate(tugboat_requests_total[1m]")
    assert isinstance(result, QueryError) and result.kind == ErrorKind.INVALID_QUERY
    assert "parse error" in result.message and "unclosed left parenthesis" in result.message
    several = Prometheus(prom.url).query('label_replace(vector(1), "a", "x", "", "") or vector(2)')
    assert isinstance(several, QueryError) and several.kind == ErrorKind.MULTIPLE_SERIES


def test_label_values_survive_escaping_exactly(lone_prometheus):
    prom, _ = lone_prometheus
    value = 'v2"} or vector(1) or {x="\\ \n\t\x01 é😀'
    expr = f'label_replace(vector(1), "x", "{queries.escape_label_value(value)}", "", "")'
    with urllib.request.urlopen(f"{prom.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}),
                                timeout=5) as resp:
        assert json.load(resp)["data"]["result"][0]["metric"]["x"] == value
    # The same hostile value as a selector only selects, it never injects a second expression.
    assert isinstance(Prometheus(prom.url).query(queries.request_count(Slice(release=value), 60)), NoData)


def test_a_stopped_prometheus_is_a_query_error_at_once(tmp_path):
    sd = ScrapeTargetServer(lambda: []).start()
    prom = DevPrometheus(tmp_path / "prometheus", sd.url).start()
    client = Prometheus(prom.url, timeout=3)
    assert isinstance(client.query("vector(1)"), Value)
    prom.stop()
    sd.stop()
    started = time.monotonic()
    result = client.query("vector(1)")
    assert isinstance(result, QueryError) and result.kind == ErrorKind.UNREACHABLE
    assert "connection refused" in result.message
    assert time.monotonic() - started < 1.0


def test_the_operator_job_scrapes_the_addresses_it_is_given(lone_prometheus):
    prom, _ = lone_prometheus
    registry = CollectorRegistry()
    objects = Gauge("tugboat_objects", "objects", ["kind", "phase"], registry=registry)
    objects.labels("TrainingRun", "Running").set(2)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        address = f"127.0.0.1:{server.server_port}"
        prom.scrape_operator(address, "10.0.0.5:8080")
        client = Prometheus(prom.url)
        assert wait_value(client, 'tugboat_objects{job="tugboat-operator", kind="TrainingRun"}',
                          lambda v: v == 2) == 2
        up = f'up{{job="tugboat-operator", instance="{address}"}}'
        assert wait_value(client, up, lambda v: v == 1) == 1
        assert "10.0.0.5:8080" in discovered(prom.url)[1]
        prom.scrape_operator()  # the operator gone: no target left
        wait_for(lambda: address not in discovered(prom.url)[0], timeout=20, what="operator target dropped")
    finally:
        server.shutdown()


# -- the data plane's Prometheus scraping real serving processes ---------------------------------

def serving_deployment(name: str, where: Slice, artifact, public_key, *extra: str) -> dict:
    labels = {"app": name, "tugboat.dev/workload": "serve", "tugboat.dev/release": where.release,
              "tugboat.dev/track": where.track, "tugboat.dev/tenant": where.tenant,
              "tugboat.dev/agent-deployment": where.agent_deployment}
    # The data plane runs the pod on this host with a clean environment: pass on which source tree
    # the test runs (a worktree's PYTHONPATH), so the pod runs the same runtime code.
    env = [{"name": "PYTHONPATH", "value": os.environ["PYTHONPATH"]}] if os.environ.get("PYTHONPATH") else []
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": labels, "annotations": {"prometheus.io/path": "/metrics"}},
            "spec": {"containers": [{
                "name": "serve", "image": "tugboat/serve:dev", "env": env,
                "ports": [{"name": "http", "containerPort": 8080}],
                "command": ["python", "-m", "tugboat_workloads.serve"],
                "args": ["--artifact", str(artifact), "--public-key", str(public_key), "--no-guardrails",
                         "--release", where.release, "--track", where.track, "--tenant", where.tenant,
                         "--agent-deployment", where.agent_deployment, "--host", "0.0.0.0",
                         "--port", "8080", *extra],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}}}]}}},
    }


def ready_address(kube, app: str) -> str:
    """host:port where the data plane serves the pod: its loopback pod IP and container port."""
    def check():
        pods = [p for p in kube.list("v1", "Pod", NS, label_selector=f"app={app}")
                if not p["metadata"].get("deletionTimestamp")]
        if not pods:
            return None
        conds = {c["type"]: c["status"] for c in (pods[0].get("status") or {}).get("conditions") or []}
        return pods[0] if conds.get("Ready") == "True" else None
    pod = wait_for(check, timeout=180, interval=0.5, what=f"{app} Ready")
    ip = pod["status"]["podIP"]
    assert ip.startswith("127."), ip
    return f"{ip}:8080"


def raw_router_counts(address: str) -> tuple[dict, dict]:
    """The serving process's own counters, read from its /metrics, for an independent check."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    tokens, entropy = {}, {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "tugboat_router_expert_tokens_total":
                tokens.setdefault(s.labels["layer"], []).append(s.value)
            elif s.name == "tugboat_router_entropy_nats_total":
                entropy[s.labels["layer"]] = s.value
    return tokens, entropy


@pytest.fixture(scope="module")
def served(cluster, kube, tmp_path_factory, signed_artifacts):  # noqa: F811
    """A stable pod of a good model and a canary pod failing every request, with traffic sent."""
    gen = host_dataplane(cluster, kube, tmp_path_factory, NS, prometheus=True)
    plane = next(gen)
    try:
        art = signed_artifacts
        kube.apply(serving_deployment("stable", STABLE, art.trained, art.public_key))
        kube.apply(serving_deployment("canary", CANARY, art.trained, art.public_key,
                                      "--dev-inject-error-rate", "1"))
        ports = {"stable": ready_address(kube, "stable"), "canary": ready_address(kube, "canary")}
        prom = Prometheus(plane.info.prometheus_url)
        # Traffic only once Prometheus scrapes both pods: increase() measures from the first sample.
        for where in (STABLE, CANARY):
            wait_value(prom, f"sum({queries.series(queries.REQUESTS, where)})", lambda v: v == 0)
        replies = [http_post_json(f"http://{ports['stable']}/v1/generate",
                                  {"prompt": PROMPTS[i % len(PROMPTS)], "maxTokens": 3})
                   for i in range(STABLE_REQUESTS)]
        assert all(status == 200 for status, _, _ in replies), replies
        for _ in range(CANARY_REQUESTS):
            assert http_post_json(f"http://{ports['canary']}/v1/generate",
                                  {"prompt": "3 7 11"})[0] == 500
        # Prometheus has scraped the state after the last request (raw counters, not a window).
        for where, count in ((STABLE, STABLE_REQUESTS), (CANARY, CANARY_REQUESTS)):
            wait_value(prom, f"sum({queries.series(queries.REQUESTS, where)})", lambda v, c=count: v == c)

        yield plane, prom, ports
    finally:
        for name in ("stable", "canary"):
            kube.delete("apps/v1", "Deployment", name, NS)
        next(gen, None)  # the data plane stops its processes and Prometheus


def test_the_data_plane_publishes_prometheus_and_its_targets_are_the_serving_processes(served):
    plane, _, ports = served
    services = json.loads((plane.state_dir / "services.json").read_text())
    assert services["prometheus"]["url"] == plane.info.prometheus_url
    assert plane.info.prometheus_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{plane.info.prometheus_url}/api/v1/targets", timeout=5) as resp:
        # Pods other modules left on the shared cluster are served (and scraped) too: ours only.
        active = [t for t in json.load(resp)["data"]["activeTargets"] if t["labels"].get("namespace") == NS]
    by_track = {t["labels"]["track"]: t for t in active}
    assert {t["scrapeUrl"] for t in active} == {f"http://{a}/metrics" for a in ports.values()}
    assert by_track["canary"]["labels"] | {"namespace": NS, "release": "moe-v2", "tenant": "team-a",
                                           "agent_deployment": "arith"} == by_track["canary"]["labels"]
    assert all(t["health"] == "up" for t in active)


def test_builtin_queries_answer_numbers_per_track(served):
    _, prom, _ = served
    q = lambda check, where: prom.query(queries.builtin_query(check, where, WINDOW))  # noqa: E731
    assert q(Builtin.ERROR_RATE, STABLE).value == 0.0
    assert q(Builtin.ERROR_RATE, CANARY).value == 1.0
    assert q(Builtin.SUCCESS_SCORE, STABLE).value == pytest.approx(1.0)
    assert isinstance(q(Builtin.SUCCESS_SCORE, CANARY), NotANumber)  # answered nothing: 0/0
    assert 0.0 < q(Builtin.LATENCY_P95, STABLE).value < 5.0
    assert 0.0 < q(Builtin.LATENCY_PER_TOKEN, STABLE).value < 1.0
    # increase() extrapolates to the window's end, up to one scrape interval over the series'
    # lifetime: 20-50% here for pods a few seconds old, a few percent for a step of a minute.
    for check, where, count in ((Builtin.REQUEST_COUNT, STABLE, STABLE_REQUESTS),
                                (Builtin.REQUEST_COUNT, CANARY, CANARY_REQUESTS),
                                (Builtin.TOKEN_COUNT, STABLE, 3 * STABLE_REQUESTS)):
        assert count <= q(check, where).value <= 2 * count
    assert q(Builtin.TOKEN_COUNT, CANARY).value == 0.0
    assert isinstance(q(Builtin.ERROR_RATE, STABLE.with_track("shadow")), NoData)


def test_router_health_over_the_window_matches_the_process_counters(served):
    _, prom, ports = served
    tokens, entropy = raw_router_counts(ports["stable"])
    imbalance = sum(max(row) / (sum(row) / len(row)) for row in tokens.values()) / len(tokens)
    mean_entropy = sum(entropy.values()) / sum(sum(row) for row in tokens.values())
    # Every series of a pod is scraped at the same instants, so extrapolation cancels in a ratio.
    got_imbalance = prom.query(queries.router_imbalance(STABLE, WINDOW)).value
    got_entropy = prom.query(queries.router_entropy(STABLE, WINDOW)).value
    assert got_imbalance == pytest.approx(imbalance, rel=1e-6)
    assert got_entropy == pytest.approx(mean_entropy, rel=1e-6)
    assert 1.0 <= got_imbalance <= 4.0 and 0.0 < got_entropy <= math.log(4)


def test_the_operator_counts_the_graph_each_stable_pod_reports_serving(served):
    from tugboat.controllers.served_graphs import served_graphs
    from tugboat.controllers.settings import Settings

    _, prom, _ = served
    settings = Settings(prometheus_url=prom.url)
    # The stable pod of `arith` serves the fp32 graph (the artifact publishes no variant).
    assert wait_for(lambda: (c := served_graphs(settings, NS, "arith")) and c["fp32"] == 1 and c,
                    timeout=30, what="the served graph in Prometheus") == {"fp32": 1, "fp16": 0, "int8": 0}
    assert served_graphs(settings, NS, "nobody") == {"fp32": 0, "fp16": 0, "int8": 0}
    assert served_graphs(Settings(), NS, "arith") is None  # no Prometheus: not observable
