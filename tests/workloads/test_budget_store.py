"""The token budget shared in a real Redis: replicas of one tenant never overrun it together,
windows roll over on the epoch, and a store outage fails open or closed as configured."""

from __future__ import annotations

import time

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.redis_server import RedisServer
from tests.workloads.serve_fixtures import (  # noqa: F401
    ServeProcess,
    free_port,
    http_get,
    http_post_json,
    signed_artifacts,
)
from tugboat_workloads.serve.budget_store import RedisBudgetStore
from tugboat_workloads.serve.guardrail_config import TokenBudgetConfig
from tugboat_workloads.serve.metrics import Identity, ServeMetrics
from tugboat_workloads.serve.token_budget import TokenBudget


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _metrics() -> ServeMetrics:
    return ServeMetrics(Identity(release="r", track="stable", tenant="acme", agent_deployment="a"))


def _sample(metrics: ServeMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(
        name, {"release": "r", "track": "stable", "tenant": "acme", "agent_deployment": "a"}) or 0.0


def _replica(url: str, clock: Clock, metrics: ServeMetrics | None = None, tokens: int = 20,
             on_unavailable: str = "FailOpen") -> TokenBudget:
    config = TokenBudgetConfig(tokens_per_window=tokens, window_seconds=60.0,
                               on_store_unavailable=on_unavailable)
    metrics = metrics or _metrics()
    return TokenBudget(config, store=RedisBudgetStore(url, 60.0, clock=clock),
                       store_health=metrics.budget_store)


def test_two_replicas_never_exceed_the_tenants_budget_together(redis_server):
    clock = Clock(6000.0)
    a, b = _replica(redis_server.url, clock), _replica(redis_server.url, clock)
    granted = 0
    for i in range(8):
        verdict, reservation = (a if i % 2 else b).reserve("acme", 3)
        granted += 3 if reservation is not None else 0
    # 6 x 3 = 18 fit; a 7th 3 would make 21 > 20, but 2 more fit exactly.
    assert granted == 18
    assert a.reserve("acme", 2)[1] is not None
    for replica in (a, b):
        verdict, reservation = replica.reserve("acme", 1)
        assert reservation is None and verdict.status == 429
        assert verdict.reason == "TokenBudgetExhausted" and verdict.retry_after == 60
    assert a.used("acme") == b.used("acme") == 20


def test_reservations_are_atomic_under_concurrent_replicas(redis_server):
    from concurrent.futures import ThreadPoolExecutor
    clock = Clock(6000.0)
    replicas = [_replica(redis_server.url, clock, tokens=50) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: replicas[i % 4].reserve("acme", 1)[1], range(200)))
    assert sum(r is not None for r in results) == 50
    assert replicas[0].used("acme") == 50


def test_settle_refunds_unused_tokens_to_every_replica(redis_server):
    clock = Clock(6000.0)
    a, b = _replica(redis_server.url, clock), _replica(redis_server.url, clock)
    _, reservation = a.reserve("acme", 20)
    assert b.reserve("acme", 1)[1] is None
    a.settle(reservation, 5)
    assert b.used("acme") == 5
    assert b.reserve("acme", 15)[1] is not None
    assert a.reserve("acme", 1)[1] is None


def test_windows_are_epoch_aligned_and_roll_over(redis_server):
    clock = Clock(6059.0)  # one second before the window [6000, 6060) ends
    a = _replica(redis_server.url, clock)
    _, old = a.reserve("acme", 20)
    verdict, _ = a.reserve("acme", 1)
    assert verdict.status == 429 and verdict.retry_after == 1
    clock.t = 6060.0
    assert a.reserve("acme", 20)[1] is not None
    # A late refund to the old window must not free tokens in the new one.
    a.settle(old, 0)
    assert a.reserve("acme", 1)[1] is None
    ttl = redis.Redis.from_url(redis_server.url).pttl("tugboat:budget:acme:101")
    assert 60_000 < ttl <= 120_000


def test_unreachable_store_fails_open_and_is_counted(redis_server):
    clock = Clock(6000.0)
    metrics = _metrics()
    budget = _replica(redis_server.url, clock, metrics)
    assert budget.reserve("acme", 1)[1] is not None
    assert _sample(metrics, "tugboat_serve_budget_store_up") == 1
    redis_server.stop()
    started = time.monotonic()
    verdict, reservation = budget.reserve("acme", 20)
    assert time.monotonic() - started < 1.0
    assert not verdict.denied and reservation is not None
    budget.settle(reservation, 0)  # a refund of an uncounted reservation touches nothing
    assert _sample(metrics, "tugboat_serve_budget_store_errors_total") == 1
    assert _sample(metrics, "tugboat_serve_budget_store_up") == 0


def test_unreachable_store_fails_closed_with_503(redis_server):
    clock = Clock(6000.0)
    metrics = _metrics()
    budget = _replica(redis_server.url, clock, metrics, on_unavailable="FailClosed")
    redis_server.stop()
    verdict, reservation = budget.reserve("acme", 1)
    assert reservation is None and verdict.status == 503
    assert verdict.reason == "BudgetStoreUnavailable" and verdict.retry_after == 5
    assert _sample(metrics, "tugboat_serve_budget_store_errors_total") == 1
    assert _sample(metrics, "tugboat_serve_budget_store_up") == 0


def _scrape(proc: ServeProcess, name: str) -> float:
    raw = http_get(proc.url + "/metrics")[2].decode()
    return sum(sample.value for family in text_string_to_metric_families(raw)
               for sample in family.samples if sample.name == name)


def _generate(proc: ServeProcess, tokens: int):
    status, headers, reply = http_post_json(proc.url + "/v1/generate",
                                            {"prompt": "1 2", "maxTokens": tokens})
    return status, headers, reply


def test_two_serving_processes_share_the_budget_over_http(redis_server, signed_artifacts,  # noqa: F811
                                                          tmp_path):
    guardrails = {"tokenBudget": {"tokensPerWindow": 10, "windowSeconds": 600},
                  "costCenter": "cc-123"}
    procs = []
    try:
        for mode in ("FailOpen", "FailClosed"):
            config = {**guardrails, "tokenBudget": {**guardrails["tokenBudget"],
                                                    "onStoreUnavailable": mode}}
            procs.append(ServeProcess(tmp_path / mode, signed_artifacts.trained,
                                      signed_artifacts.public_key, config,
                                      extra_args=("--budget-store", redis_server.url)))
        fail_open, fail_closed = (proc.wait_ready() for proc in procs)
        assert _scrape(fail_open, "tugboat_serve_budget_store_up") == 1
        assert _generate(fail_open, 4)[0] == 200
        assert _generate(fail_closed, 4)[0] == 200
        for proc in (fail_open, fail_closed):
            status, headers, reply = _generate(proc, 4)
            assert status == 429 and reply["error"]["reason"] == "TokenBudgetExhausted"
            assert "8 of 10" in reply["error"]["message"] and 1 <= int(headers["Retry-After"]) <= 600
        redis_server.stop()
        assert _generate(fail_open, 4)[0] == 200
        assert _scrape(fail_open, "tugboat_serve_budget_store_errors_total") >= 1
        assert _scrape(fail_open, "tugboat_serve_budget_store_up") == 0
        status, headers, reply = _generate(fail_closed, 4)
        assert status == 503 and reply["error"]["reason"] == "BudgetStoreUnavailable"
        assert headers["Retry-After"] == "5"
    finally:
        for proc in procs:
            proc.stop()
