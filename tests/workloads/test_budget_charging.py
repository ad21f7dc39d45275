"""What a request costs the tenant's shared budget, over HTTP against real serving processes and a
real Redis: the tokens its models generated. A kept answer costs what it returns; a fallback
answer also costs the primary's discarded attempt; a refusal costs the attempt it refused."""

from __future__ import annotations

import pytest

from tests.redis_server import RedisServer
from tests.workloads.serve_fixtures import ServeProcess, signed_artifacts  # noqa: F401
from tests.workloads.test_serve_http import GUARDRAILS, Metrics, delta, post
from tugboat_workloads.serve.budget_store import RedisBudgetStore

WINDOW = 3600
BUDGETED = {**GUARDRAILS, "tokenBudget": {"tokensPerWindow": 1000, "windowSeconds": WINDOW}}
GENERATED = "tugboat_generated_tokens_total"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def servers(signed_artifacts, store, tmp_path_factory):  # noqa: F811
    """One tenant's three deployments, counting against one store: confident (keeps its answers),
    unconfident with a confident fallback model, and unconfident refusing."""
    shared = ("--budget-store", store.url)
    simple = {**BUDGETED, "fallback": {"minConfidence": 0.5, "mode": "SimpleModel"}}
    procs = {
        "kept": ServeProcess(tmp_path_factory.mktemp("kept"), signed_artifacts.trained,
                             signed_artifacts.public_key, BUDGETED, extra_args=shared),
        "fallback": ServeProcess(tmp_path_factory.mktemp("fallback"), signed_artifacts.untrained,
                                 signed_artifacts.public_key, simple,
                                 extra_args=(*shared, "--fallback-artifact", str(signed_artifacts.trained))),
        "refused": ServeProcess(tmp_path_factory.mktemp("refused"), signed_artifacts.untrained,
                                signed_artifacts.public_key, BUDGETED, extra_args=shared),
    }
    try:
        yield {name: proc.wait_ready() for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stop()


def _charged(store, proc, request_id: str, max_tokens: int = 4):
    """(reply, tokens the store counted for it, tokens the process says its models generated)."""
    counter = RedisBudgetStore(store.url, WINDOW)
    before_used, before = counter.used("acme"), Metrics(proc)
    status, _, reply = post(proc, {"prompt": "3 7 11", "maxTokens": max_tokens}, request_id)
    assert status == 200, reply
    charged, generated = counter.used("acme") - before_used, delta(before, Metrics(proc), GENERATED)
    counter.close()
    return reply, charged, generated


def test_a_kept_answer_costs_the_tokens_it_returns(store, servers):
    reply, charged, generated = _charged(store, servers["kept"], "kept")
    assert reply["model"] == "primary" and reply["tokens"] == 4
    assert charged == generated == 4


def test_a_fallback_answer_costs_both_models_generations(store, servers):
    reply, charged, generated = _charged(store, servers["fallback"], "fallback")
    assert (reply["model"], reply["tokens"]) == ("fallback", 4)
    assert generated == 8  # the primary's 4, discarded, and the fallback's 4
    assert charged == 8


def test_a_refusal_costs_the_generation_it_refused(store, servers):
    reply, charged, generated = _charged(store, servers["refused"], "refused")
    assert (reply["model"], reply["tokens"]) == ("refused", 0)
    assert generated == 4
    assert charged == 4


def test_a_fallback_past_the_reservation_still_counts_and_the_budget_then_refuses(store, servers):
    # The reservation holds maxTokens; a fallback generates up to twice that. The overrun is
    # charged, so the tenant's next request finds the budget spent.
    counter = RedisBudgetStore(store.url, WINDOW)
    left = 1000 - counter.used("acme")
    assert counter.reserve("acme", left - 6, 1000).granted  # another replica's requests
    assert 1000 - counter.used("acme") == 6
    _, charged, generated = _charged(store, servers["fallback"], "overrun", max_tokens=6)
    assert charged == generated == 12 and counter.used("acme") == 1006
    status, _, reply = post(servers["refused"], {"prompt": "1 2", "maxTokens": 1}, "spent")
    assert status == 429 and reply["error"]["reason"] == "TokenBudgetExhausted"
    counter.close()
