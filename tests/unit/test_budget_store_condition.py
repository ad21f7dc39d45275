"""The BudgetStore condition (pure decide with the probe as input) and the probe's cache and flip
watch (with a scripted ping and clock)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.unit.test_agent_deployment_reconcile import TENANT, observed
from tugboat.api.tenant import TenantSpec
from tugboat.controllers.budget_store import StoreProber, watch, where
from tugboat.reconcile.agent_deployment import decide
from tugboat.reconcile.budget_store import BUDGET_STORE, StoreProbe
from tugboat.reconcile.tenancy import TenantView

UP = StoreProbe("redis.tugboat-system:6379", True)
DOWN = StoreProbe("redis.tugboat-system:6379", False, "ConnectionError: connection refused")


def _closed_tenant() -> TenantView:
    spec = TENANT.spec.model_dump(by_alias=True)
    spec["tokenBudget"] = {"onStoreUnavailable": "FailClosed"}
    return TenantView(TENANT.name, TenantSpec.model_validate(spec))


def _condition(status):
    return next((c for c in status.conditions if c.type == BUDGET_STORE), None)


def test_a_reachable_store_is_true_and_says_the_budget_is_the_tenants(now):
    out = decide(observed(budget_store=UP), now)
    c = _condition(out.status)
    assert (c.status, c.reason) == ("True", "BudgetStoreReachable")
    assert "redis.tugboat-system:6379" in c.message and "Tenant team-a" in c.message
    assert not [e for e in out.events if e.reason.startswith("BudgetStore")]  # first look, all well


@pytest.mark.parametrize("tenant, says", [(TENANT, "FailOpen: serving uncounted"),
                                          (_closed_tenant(), "FailClosed: refusing with 503")])
def test_an_unreachable_store_is_false_with_what_the_pods_do_meanwhile(now, tenant, says):
    out = decide(observed(budget_store=DOWN, tenant=tenant), now)
    c = _condition(out.status)
    assert (c.status, c.reason) == ("False", "BudgetStoreUnreachable")
    assert says in c.message and "connection refused" in c.message


def test_losing_the_store_warns_once_and_getting_it_back_is_normal(now):
    first = decide(observed(budget_store=UP), now)
    lost = decide(observed(budget_store=DOWN, status=first.status), now)
    assert [(e.type, e.reason) for e in lost.events if e.reason.startswith("BudgetStore")] == [
        ("Warning", "BudgetStoreUnreachable")]
    still = decide(observed(budget_store=DOWN, status=lost.status), now)
    assert not [e for e in still.events if e.reason.startswith("BudgetStore")]
    later = now + timedelta(minutes=3)
    back = decide(observed(budget_store=UP, status=still.status), later)
    assert [(e.type, e.reason) for e in back.events if e.reason.startswith("BudgetStore")] == [
        ("Normal", "BudgetStoreReachable")]
    assert _condition(still.status).last_transition_time == now
    assert _condition(back.status).last_transition_time == later


def test_without_a_store_there_is_no_condition_and_a_stale_one_goes(now):
    assert _condition(decide(observed(), now).status) is None
    with_one = decide(observed(budget_store=UP), now)
    assert _condition(decide(observed(status=with_one.status), now).status) is None


def test_an_invalid_spec_still_reports_the_store_of_its_tenant(now):
    out = decide(observed(spec={"modelLine": "not-allowed"}, budget_store=DOWN), now)
    assert out.status.phase == "Invalid"
    assert _condition(out.status).status == "False"


def test_no_tenant_no_condition(now):
    out = decide(observed(tenant=None, budget_store=UP), now)
    assert _condition(out.status) is None


def test_where_never_shows_the_password():
    assert where("redis://:s3cret@redis.tugboat-system:6380/0") == "redis.tugboat-system:6380"
    assert where("rediss://user:pw@store") == "store:6379"


class _Script:
    """A ping answering from a list, and a clock the test moves."""

    def __init__(self, *answers: StoreProbe):
        self.answers, self.calls, self.t = list(answers), 0, 0.0

    def ping(self, _url: str) -> StoreProbe:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]

    def clock(self) -> float:
        return self.t


def test_probe_answers_from_memory_while_fresh_then_pings_again():
    script = _Script(UP, DOWN)
    prober = StoreProber(script.ping, script.clock, fresh=5.0)
    assert [prober.probe("redis://a") for _ in range(100)] == [UP] * 100
    assert script.calls == 1
    script.t = 5.0
    assert prober.probe("redis://a") == DOWN and script.calls == 2
    assert prober.probe("redis://b") == DOWN and script.calls == 3  # per URL


def test_watch_calls_back_on_each_flip_only():
    script = _Script(UP, UP, DOWN, DOWN, UP, UP)
    prober, stop, flips = StoreProber(script.ping, script.clock), threading.Event(), []

    def on_flip(answer):
        flips.append(answer.reachable)
        if len(flips) == 2:
            stop.set()
    thread = threading.Thread(target=watch, args=("redis://a", on_flip, stop, prober, 0.0))
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and flips == [False, True]


def test_a_failing_callback_does_not_end_the_watch():
    script = _Script(UP, DOWN, UP)
    prober, stop, seen = StoreProber(script.ping, script.clock), threading.Event(), []

    def on_flip(answer):
        seen.append(answer.reachable)
        if answer.reachable:
            stop.set()
        raise RuntimeError("API server away")
    watch("redis://a", on_flip, stop, prober, 0.0)
    assert seen == [False, True]

