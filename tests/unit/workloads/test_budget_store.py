"""Shared token budget against a real redis-server on a free loopback port."""

import socket
import subprocess
import time

import pytest
import redis

from tugboat_workloads.serve.budget_store import RedisBudgetStore
from tugboat_workloads.serve.guardrail_config import TokenBudgetConfig
from tugboat_workloads.serve.token_budget import TokenBudget


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url():
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--save", "", "--appendonly", "no", "--bind",
                             "127.0.0.1", "--port", str(port), "--maxmemory", "64mb"],
                            stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=0.25)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start within 10 s"
            time.sleep(0.05)
    yield url, proc
    proc.terminate()
    proc.wait(timeout=10)


class FakeClock:
    def __init__(self, t=6000.0):
        self.t = t

    def __call__(self):
        return self.t


def _budget(url, clock, limit=20, mode="FailOpen", health=None):
    config = TokenBudgetConfig(tokens_per_window=limit, window_seconds=60,
                               on_store_unavailable=mode)
    store = RedisBudgetStore(url, 60, clock=clock)
    return TokenBudget(config, store=store, store_health=health or (lambda up: None))


def test_two_replicas_share_one_budget_per_epoch_window(redis_url):
    url, _ = redis_url
    clock = FakeClock(6000.0 + 50)  # window index 100 covers [6000, 6060)
    a, b = _budget(url, clock), _budget(url, clock)
    granted = 0
    for i in range(30):
        verdict, reservation = (a if i % 2 else b).reserve("acme", 1)
        if not verdict.denied:
            granted += 1
    assert granted == 20
    verdict, _ = a.reserve("acme", 1)
    assert (verdict.status, verdict.reason, verdict.retry_after) == (429, "TokenBudgetExhausted", 10)
    clock.t = 6060.0  # next epoch window: fresh budget for every replica
    assert not b.reserve("acme", 1)[0].denied


def test_settle_gives_back_unused_tokens_to_the_shared_window(redis_url):
    url, _ = redis_url
    clock = FakeClock()
    a, b = _budget(url, clock), _budget(url, clock)
    verdict, reservation = a.reserve("acme", 15)
    assert not verdict.denied
    assert b.reserve("acme", 10)[0].status == 429
    a.settle(reservation, 3)  # 12 unused tokens return
    assert not b.reserve("acme", 10)[0].denied
    assert RedisBudgetStore(url, 60, clock=clock).used("acme") == 13


@pytest.mark.parametrize("mode,status", [("FailOpen", None), ("FailClosed", 503)])
def test_store_outage_follows_on_store_unavailable(redis_url, mode, status):
    url, proc = redis_url
    health = []
    budget = _budget(url, FakeClock(), mode=mode, health=health.append)
    assert not budget.reserve("acme", 1)[0].denied
    proc.terminate()
    proc.wait(timeout=10)
    started = time.monotonic()
    verdict, _ = budget.reserve("acme", 1)
    assert time.monotonic() - started < 2, "a dead store must not stall the request"
    assert health == [True, False]
    if status is None:
        assert not verdict.denied
    else:
        assert (verdict.status, verdict.reason, verdict.retry_after) == (
            503, "BudgetStoreUnavailable", 5)
