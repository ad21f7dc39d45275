"""Token budget per tenant per window, driven by a fake clock."""

from hypothesis import given
from hypothesis import strategies as st

from tugboat_workloads.serve.guardrail_config import TokenBudgetConfig
from tugboat_workloads.serve.token_budget import TokenBudget


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_exhausted_budget_answers_429_with_seconds_until_the_window_resets():
    clock = FakeClock()
    budget = TokenBudget(TokenBudgetConfig(tokens_per_window=10, window_seconds=60), clock)
    for _ in range(2):
        verdict, reservation = budget.reserve("acme", 4)
        assert not verdict.denied
        budget.settle(reservation, 4)
    clock.t += 20.5
    verdict, reservation = budget.reserve("acme", 4)
    assert (verdict.status, verdict.reason, verdict.retry_after) == (429, "TokenBudgetExhausted", 40)
    assert reservation is None
    assert "8 of 10" in verdict.message
    clock.t += 39.5  # the window started at t=1000 and lasts 60 s
    assert not budget.reserve("acme", 4)[0].denied


def test_tenants_have_separate_budgets():
    budget = TokenBudget(TokenBudgetConfig(tokens_per_window=5, window_seconds=60), FakeClock())
    assert not budget.reserve("acme", 5)[0].denied
    assert budget.reserve("acme", 1)[0].denied
    assert not budget.reserve("globex", 5)[0].denied


def test_settle_refunds_unused_tokens_but_not_into_a_later_window():
    clock = FakeClock()
    budget = TokenBudget(TokenBudgetConfig(tokens_per_window=10, window_seconds=60), clock)
    _, reservation = budget.reserve("acme", 8)
    budget.settle(reservation, 3)
    assert budget.used("acme") == 3
    _, late = budget.reserve("acme", 6)
    clock.t += 61
    assert budget.used("acme") == 0
    budget.settle(late, 0)
    assert budget.used("acme") == 0


def test_settle_charges_what_was_generated_beyond_the_reservation():
    # A fallback answer generates the primary's tokens and the fallback's: up to twice maxTokens.
    budget = TokenBudget(TokenBudgetConfig(tokens_per_window=10, window_seconds=60), FakeClock())
    _, reservation = budget.reserve("acme", 4)
    budget.settle(reservation, 8)
    assert budget.used("acme") == 8
    assert budget.reserve("acme", 3)[0].status == 429


def test_a_request_larger_than_the_whole_window_is_a_400_not_a_retry():
    budget = TokenBudget(TokenBudgetConfig(tokens_per_window=3, window_seconds=60), FakeClock())
    verdict, _ = budget.reserve("acme", 4)
    assert (verdict.status, verdict.reason, verdict.retry_after) == (400, "RequestExceedsBudget", None)


@given(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8), st.floats(0, 30)), max_size=60),
       st.integers(1, 40))
def test_tokens_delivered_per_window_never_exceed_the_limit(steps, limit):
    clock = FakeClock()
    budget = TokenBudget(TokenBudgetConfig(tokens_per_window=limit, window_seconds=60), clock)
    delivered: dict[float, int] = {}
    for asked, used, advance in steps:
        clock.t += advance
        verdict, reservation = budget.reserve("acme", asked)
        assert budget.used("acme") <= limit
        if reservation is None:
            assert verdict.status == (400 if asked > limit else 429)
            continue
        budget.settle(reservation, min(used, asked))
        start = reservation.window
        delivered[start] = delivered.get(start, 0) + min(used, asked)
        assert delivered[start] <= limit
