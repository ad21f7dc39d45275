"""Phased canary rollouts on the real local cluster: real training, export and signatures, real
serving pods behind the real nginx gateway, judged by the real Prometheus, driven by the operator
process. Runs after test_lineage.py (same package, file order) and builds on it: its TrainingRuns
moe-a (600 steps) and moe-b (60 steps: under-trained), the promoted release moe-arith-v1, and
team-a's arith-agent.

Two tenants in two waves (team-b first, then team-a) serve v1 through the gateway while steady
traffic runs through it. Four releases are applied at once, each held by a pause intent so they
export in parallel, then let go one at a time: an under-trained model, one answering half its
requests with HTTP 500, one slow only in team-a (promoted in team-b's wave 0 before wave 1
breaches), all rolled back by themselves; then a good v2, promoted everywhere across an operator
SIGKILL mid-step.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
import yaml

from tests.dashboard_queries import dashboard, queries
from tests.e2e.conftest import running_operator
from tests.integration.helpers import conditions, events_for, first_sample, get, wait_for
from tugboat.builders.agent_deployment import GATEWAY_API
from tugboat.dev.dataplane.faults import FaultRule, add_rule
from tugboat.dev.tools import repo_root
from tugboat.dev.traffic import TrafficPlan, run_traffic
from tugboat.rollout.intents import ANNOTATION
from tugboat.tracking import Registry

EXAMPLES = repo_root() / "examples"
PLATFORM, LINE, V1 = "ml-platform", "moe-arith", "moe-arith-v1"
UNDER, ERRORS, SLOW, V2 = "moe-arith-under", "moe-arith-errors", "moe-arith-slow", "moe-arith-v2"
AGENT = "arith-agent"
GATEWAY = {"name": "tugboat", "namespace": "tugboat-gateway", "sectionName": "http"}
RATE = 6.0  # requests per second to each tenant
TIMING = {"interval": "4s", "window": "20s", "count": 2, "minRequests": 5, "inconclusiveLimit": 8}
CHECKS = [
    {"name": "error-rate", "metric": "ErrorRate", "threshold": 0.05, **TIMING},
    # Two slow windows in a row: one noisy window on a 2-core machine must not roll a good model back.
    {"name": "latency-p95", "metric": "LatencyP95", "threshold": 0.25, "failureLimit": 1, **TIMING},
    {"name": "success-score", "metric": "SuccessScore", "threshold": 0.8, **TIMING},
]
pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class Team:
    namespace: str
    wave: int
    host: str
    replicas: int


TEAMS = (Team("team-b", 0, "arith-b.example.test", 1),
         Team("team-a", 1, "arith-a.example.test", 2))


def _example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _apply(cluster, doc: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def _release(name: str, training_run: str, steps: list[dict], variants: list[str]) -> dict:
    doc = _example("20-modelrelease.yaml")
    doc["metadata"].update(name=name, annotations={ANNOTATION: "pause@held"})
    doc["spec"]["source"]["trainingRun"] = training_run
    doc["spec"]["export"]["variants"] = variants
    doc["spec"]["rollout"] = {"steps": steps, "analysis": {"checks": CHECKS}}
    return doc


class Load:
    """Steady, bounded traffic through the gateway to every team, each answer kept with its
    wall-clock time; stopped by the module's teardown if the tests end first."""

    def __init__(self, url: str, api_keys: dict[str, str], seconds: float = 1500):
        self.url, self.api_keys, self.seconds = url, api_keys, seconds
        self.records: list[tuple[float, str, object]] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> Load:
        for team in TEAMS:
            plan = TrafficPlan(url=self.url, rate=RATE, duration=self.seconds, host=team.host,
                               headers={"Authorization": f"Bearer {self.api_keys[team.namespace]}"},
                               concurrency=3, timeout=15)
            thread = threading.Thread(target=run_traffic, daemon=True, kwargs={
                "plan": plan, "stop": self.stop,
                "on_served": lambda s, ns=team.namespace: self.records.append((time.time(), ns, s))})
            thread.start()
            self.threads.append(thread)
        return self

    def since(self, t0: float, namespace: str | None = None) -> list:
        return [s for _, s in self.timed(t0, namespace)]

    def timed(self, t0: float, namespace: str | None = None) -> list[tuple[float, object]]:
        """(wall-clock time of the answer, what was served) from t0 on."""
        return [(t, s) for t, ns, s in list(self.records) if t >= t0 and namespace in (None, ns)]

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


class Watcher:
    """Samples every team's HTTPRoute weights and a release's per-target plan (a few times a
    second), so a test can tell that no weight jumped and no step started twice."""

    def __init__(self, kube, release: str):
        self.kube, self.release = kube, release
        self.samples: list[tuple[float, dict, dict]] = []  # (time, {ns: [stable, canary]}, {ns: plan})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                routes = {t.namespace: _route_weights(self.kube, t.namespace) for t in TEAMS}
                plans = {p["namespace"]: p for p in _rollout(self.kube, self.release).get("targets", [])}
            except Exception:  # noqa: BLE001 - an API hiccup is a missed sample, not a failure
                continue
            self.samples.append((time.time(), routes, plans))

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def _rollout(kube, name: str) -> dict:
    return (get(kube, "ModelRelease", name, PLATFORM).get("status") or {}).get("rollout") or {}


def _route_weights(kube, namespace: str) -> list[int]:
    route = kube.get(GATEWAY_API, "HTTPRoute", AGENT, namespace)
    return [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]]


def _agent(kube, namespace: str) -> dict:
    return get(kube, "AgentDeployment", AGENT, namespace).get("status") or {}


def _settled(kube, name: str, *phases: str, timeout: float = 420) -> dict:
    return wait_for(lambda: _rollout(kube, name).get("phase") in phases and _rollout(kube, name),
                    timeout=timeout, interval=1, what=f"{name} rollout {'/'.join(phases)}")


def _let_go(cluster, name: str) -> float:
    """Lift the pause the release was applied with; returns when, on the wall clock."""
    cluster.kubectl("annotate", "--overwrite", "modelrelease", name, "-n", PLATFORM,
                    f"{ANNOTATION}=resume@go")
    return time.time()


def _serves_v1_only(kube) -> bool:
    return all(_agent(kube, t.namespace).get("stableRelease") == V1
               and not _agent(kube, t.namespace).get("canaryRelease")
               and _route_weights(kube, t.namespace) == [100, 0] for t in TEAMS)


def _canary_answers(load: Load, release: str, t0: float) -> list:
    return [s for s in load.since(t0) if s.release == release and s.track == "canary"]


@pytest.fixture(scope="module")
def world(cluster, kube, dataplane, start_e2e_operator, api_keys):
    running_operator(start_e2e_operator)
    assert get(kube, "ModelRelease", V1, PLATFORM)["status"]["phase"] == "Promoted", \
        "run after tests/e2e/test_lineage.py: it trains moe-a/moe-b and promotes moe-arith-v1"
    # Faults for pods started from now on (the canaries), by release and, for SLOW, one tenant.
    add_rule(dataplane.state_dir, FaultRule(ERRORS, error_rate=0.5))
    add_rule(dataplane.state_dir, FaultRule(SLOW, namespace="team-a", latency_ms=400))
    quick = [{"weight": 25}, {"weight": 50}]
    for doc in (_release(UNDER, "moe-b", quick, []), _release(ERRORS, "moe-a", quick, []),
                _release(SLOW, "moe-a", quick, []),
                _release(V2, "moe-a", [{"weight": 25}, {"weight": 50, "pause": {"duration": "12s"}}],
                         ["int8"])):
        _apply(cluster, doc)

    tenant_b = _example("01-tenant.yaml")
    tenant_b["metadata"]["name"] = "team-b"
    tenant_b["spec"].update(namespaces=["team-b"], groups=["team-b-devs"], costCenter="cc-2042",
                            rollout={"wave": 0})
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}})
    _apply(cluster, tenant_b)
    for team in TEAMS:
        agent = _example("30-agentdeployment.yaml")
        agent["metadata"]["namespace"] = team.namespace
        agent["spec"].update(replicas=team.replicas,
                             traffic={"gatewayRef": GATEWAY, "hostnames": [team.host]})
        _apply(cluster, agent)
    for team in TEAMS:
        wait_for(lambda ns=team.namespace: (st := _agent(kube, ns)).get("phase") == "Serving"
                 and (st.get("route") or {}).get("accepted") and st.get("stableRelease") == V1,
                 timeout=300, interval=1, what=f"{team.namespace} serving v1 through the gateway")
    gateway = json.loads((dataplane.state_dir / "gateway" / "gateway.json").read_text())["url"]
    load = Load(gateway, api_keys).start()
    try:
        yield load
    finally:
        load.close()


def test_two_waves_serve_v1_through_the_gateway(kube, world):
    time.sleep(10)
    for team in TEAMS:
        served = world.since(time.time() - 10, team.namespace)
        assert len(served) >= 30, f"{team.namespace}: {len(served)} answers in 10 s"
        assert {(s.status, s.release, s.track) for s in served} == {(200, V1, "stable")}, team.namespace
        # The checks' thresholds mean something only if the good model clears them with room.
        scores = [s.score for s in served if s.score is not None]
        assert _mean(scores) >= 0.9, f"{team.namespace}: v1 mean score {_mean(scores)}"
    for name in (UNDER, ERRORS, SLOW, V2):
        wait_for(lambda n=name: get(kube, "ModelRelease", n, PLATFORM).get("status", {}).get("phase")
                 in ("Paused", "Failed"), timeout=900, interval=2, what=f"{name} verified and held")
        rollout = _rollout(kube, name)
        assert rollout["phase"] == "Paused" and all(p["weight"] == 0 for p in rollout["targets"]), rollout
    assert _serves_v1_only(kube)


def _assert_rolled_back(kube, registry, name: str, metric: str, namespace: str) -> dict:
    registry_version = _v1_version(kube)
    rollout = _settled(kube, name, "RolledBack", "Promoted")
    assert rollout["phase"] == "RolledBack", rollout
    breach = rollout["breach"]
    assert (breach["metric"], breach["namespace"]) == (metric, namespace), breach
    cond = conditions(get(kube, "ModelRelease", name, PLATFORM))["RolledBack"]
    assert cond["status"] == "True"
    for part in (breach["check"], metric, breach["query"], f"threshold {breach['threshold']:g}"):
        assert part in cond["message"], (part, cond["message"])
    assert all(p["weight"] == 0 and p["state"] == "RolledBack" for p in rollout["targets"]), rollout
    warnings = [e for e in events_for(kube, name, PLATFORM) if e["type"] == "Warning"]
    assert any(e["reason"] == "RolledBack" and metric in e["message"] for e in warnings), warnings
    # Events list in no particular order, and earlier releases' rollbacks are there too; the
    # deployment's event is written just after the release's status, so it may trail it a little.
    wait_for(lambda: any(name in e["message"] for e in events_for(kube, AGENT, namespace)
                         if e["reason"] == "RolledBack"),
             timeout=30, what=f"a RolledBack event naming {name} on {namespace}/{AGENT}")
    wait_for(lambda: _serves_v1_only(kube), timeout=60, what="both waves back on v1 only")
    assert _alias(registry) == registry_version, "the alias must never move on a rollback"
    return rollout


@pytest.fixture(scope="module")
def registry(dataplane) -> Registry:
    return Registry(dataplane.info.mlflow_url)


def _alias(registry: Registry) -> str | None:
    return registry.alias_version(LINE, "production")


def _v1_version(kube) -> str:
    return get(kube, "ModelRelease", V1, PLATFORM)["status"]["registryVersion"]


def test_an_under_trained_model_is_rolled_back_by_its_success_score(cluster, kube, registry, world):
    assert _alias(registry) == _v1_version(kube)
    t0 = _let_go(cluster, UNDER)
    rollout = _assert_rolled_back(kube, registry, UNDER, "SuccessScore", "team-b")
    assert rollout["breach"]["value"] < 0.8
    # Wave 1 never started: team-a's plan never had a weight.
    team_a = next(p for p in rollout["targets"] if p["namespace"] == "team-a")
    assert team_a.get("stepStartedAt") is None, team_a
    assert not [s for s in world.since(t0, "team-a") if s.release == UNDER]
    print(f"under-trained canary: mean score "
          f"{_mean([s.score for s in _canary_answers(world, UNDER, t0)]):.3f}, "
          f"breach {rollout['breach']['message']}")


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def test_injected_errors_are_rolled_back_with_a_small_blast_radius(cluster, kube, registry, dataplane,
                                                                   world):
    t0 = _let_go(cluster, ERRORS)
    with Watcher(kube, ERRORS) as watcher:
        rollout = _assert_rolled_back(kube, registry, ERRORS, "ErrorRate", "team-b")
        time.sleep(12)  # answers in flight at weight 0, and nginx's reload, are over
    bad = _canary_answers(world, ERRORS, t0)
    assert bad and any(s.status == 500 for s in bad), "the faulty canary must have served"
    # Weight 0 on the route: the first sample after the last one with canary weight > 0.
    raised = [t for t, routes, _ in watcher.samples if routes["team-b"][1] > 0]
    zero_at = next(t for t, routes, _ in watcher.samples if raised and t > raised[-1])
    first_breach = first_sample(dataplane.info.prometheus_url,
                                f'tugboat_requests_total{{release="{ERRORS}",track="canary",code=~"5.."}}')
    everything = world.since(t0)
    share = len(bad) / len(everything)
    # Once the route says 0 and nginx reloaded (about a second), the canary gets nothing new.
    late = [t - zero_at for t, s in world.timed(t0) if s.release == ERRORS and t > zero_at + 10]
    print(f"blast radius: {len(bad)} of {len(everything)} requests ({share:.1%}) served by the bad "
          f"canary; first breaching sample -> weight 0: {zero_at - first_breach:.1f}s "
          f"(analysis interval 4s); exposure in status: {rollout.get('exposure')}, while breaching: "
          f"{rollout.get('breachExposure')}")
    assert first_breach < zero_at
    assert not late, f"the canary still answered {len(late)} requests 10 s after weight 0"
    assert rollout["exposure"]["requests"] > 0 and rollout.get("breachExposure") is not None
    # Counted again as the late scrapes came in: the status now accounts for what the generator saw.
    settled = _rollout(kube, ERRORS)
    print(f"exposure 12 s after the rollback: {settled['exposure']}, while breaching: "
          f"{settled.get('breachExposure')}; the traffic generator counted {len(bad)}")
    assert settled["exposure"]["requests"] >= 0.8 * len(bad)


def test_a_breach_in_the_second_wave_rolls_the_first_back_too(cluster, kube, registry, world):
    t0 = _let_go(cluster, SLOW)
    # Wave 0 (team-b, no fault there) walks every step: its canary then takes all of team-b's traffic.
    wait_for(lambda: any(p["namespace"] == "team-b" and p["state"] == "Promoted"
                         for p in _rollout(kube, SLOW).get("targets", [])),
             timeout=420, interval=1, what="team-b promoted in wave 0")
    wait_for(lambda: _route_weights(kube, "team-b") == [0, 100], timeout=60, what="team-b at 100%")
    assert _agent(kube, "team-b")["stableRelease"] == V1, "the stable stays on v1 until all waves pass"
    rollout = _assert_rolled_back(kube, registry, SLOW, "LatencyP95", "team-a")
    assert next(p for p in rollout["targets"] if p["namespace"] == "team-b")["state"] == "RolledBack"
    on_b = [e for e in events_for(kube, AGENT, "team-b")
            if e["reason"] == "RolledBack" and SLOW in e["message"]]
    assert on_b, "the earlier wave's deployment is told why it was rolled back"
    slow_b = [s for s in world.since(t0, "team-b") if s.release == SLOW]
    assert slow_b, "team-b's canary served before the rollback"
    # Back on v1 at once: the stable never stopped running it.
    time.sleep(5)
    recent = world.since(time.time() - 3, "team-b")
    assert recent and {(s.status, s.release, s.track) for s in recent} == {(200, V1, "stable")}, recent[:5]


def test_a_good_release_walks_both_waves_across_an_operator_sigkill(cluster, kube, registry, world,
                                                                   live_operator, start_e2e_operator):
    version_before = _alias(registry)
    t0 = _let_go(cluster, V2)
    with Watcher(kube, V2) as watcher:
        # Mid-step: team-b at weight 50 inside its 12 s pause.
        plan = wait_for(lambda: next((p for p in _rollout(kube, V2).get("targets", [])
                                      if p["namespace"] == "team-b" and p["step"] == 1
                                      and p["weight"] == 50), None),
                        timeout=420, interval=0.5, what="team-b at step 1 (50%)")
        live_operator.kill()
        time.sleep(3)
        start_e2e_operator()
        rollout = _settled(kube, V2, "Promoted", "RolledBack", timeout=600)
        assert rollout["phase"] == "Promoted", rollout
        wait_for(lambda: all(_agent(kube, t.namespace).get("stableRelease") == V2
                             and _route_weights(kube, t.namespace) == [100, 0] for t in TEAMS),
                 timeout=180, interval=1, what="both stable tracks on v2")
    after = next(p for t, _, plans in watcher.samples if (p := plans.get("team-b")) and p["step"] == 1)
    assert after["stepStartedAt"] == plan["stepStartedAt"], "the restart must not restart the step"
    for team in TEAMS:
        plans = [plans[team.namespace] for _, _, plans in watcher.samples if team.namespace in plans]
        weights = [p["weight"] for p in plans]
        assert weights == sorted(weights), f"{team.namespace}: a weight went back: {weights}"
        starts = {}
        for p in plans:
            if p.get("stepStartedAt"):
                assert starts.setdefault(p["step"], p["stepStartedAt"]) == p["stepStartedAt"], \
                    f"{team.namespace}: step {p['step']} started twice"
        assert set(weights) <= {0, 25, 50, 100}, weights
    # Promoted everywhere: the alias moved, v1 is gone from every deployment.
    mr = get(kube, "ModelRelease", V2, PLATFORM)
    assert _alias(registry) == mr["status"]["registryVersion"] != version_before
    wait_for(lambda: not kube.list("v1", "Pod", label_selector=f"tugboat.dev/release={V1}"),
             timeout=180, interval=1, what="v1's pods scaled down")
    settled = wait_for(lambda: (recent := world.since(time.time() - 3)) and {
        (s.status, s.release, s.track) for s in recent} == {(200, V2, "stable")} and time.time(),
        timeout=60, interval=1, what="every answer from v2's stable track")
    served = world.since(t0)
    failed = [s for s in served if s.status != 200]
    print(f"good v2: {len(served)} requests from its start to settled on the stable track "
          f"({settled - t0:.0f}s), {sum(s.release == V2 for s in served)} by v2, "
          f"{len(failed)} not 200 {sorted({s.status for s in failed})}")
    assert len(failed) <= 0.01 * len(served), f"{len(failed)} failed answers during a good rollout"


def _series(prometheus_url: str, expr: str) -> list:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)["data"]["result"]


def test_every_dashboard_query_returns_data(dataplane, world):
    """Last, when the lineage and every rollout have run: each query of the chart's Grafana
    dashboard, sent to the data plane's real Prometheus (which scrapes the serving pods and the
    operator), answers at least one series."""
    values = {"namespace": PLATFORM, "tenant": "|".join(t.namespace for t in TEAMS)}
    empty = {}
    for where, expr in queries(dashboard(), values):
        try:
            wait_for(lambda e=expr: _series(dataplane.info.prometheus_url, e), timeout=30, interval=1,
                     what=expr)
        except AssertionError:
            empty[where] = expr
    assert not empty, f"dashboard queries without data: {json.dumps(empty, indent=1)}"
