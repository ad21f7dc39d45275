"""The BudgetStore condition of an AgentDeployment: whether the shared token budget store its
serving pods count against answers, and what they do while it does not (the Tenant's
tokenBudget.onStoreUnavailable). Pure: the probe result comes in, the condition and the Events
of a flip go out. Must not ping anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ..api.tenant import StoreFailureMode
from ..conditions import find
from ..reasons import Reason
from .outcome import EventIntent, Outcome, set_conditions
from .tenancy import TenantView

BUDGET_STORE = "BudgetStore"

_WHILE_DOWN = {StoreFailureMode.FAIL_OPEN: "serving uncounted",
               StoreFailureMode.FAIL_CLOSED: "refusing with 503"}


@dataclass(frozen=True)
class StoreProbe:
    """One look at the store, as the operator saw it (pods reach it through the same Service)."""

    where: str  # host:port, never the URL: it may carry a password
    reachable: bool
    error: str = ""


def budget_store_condition(probe: StoreProbe, tenant: TenantView) -> tuple[str, bool, Reason, str]:
    mode = tenant.spec.token_budget.on_store_unavailable
    if probe.reachable:
        return (BUDGET_STORE, True, Reason.BUDGET_STORE_REACHABLE,
                f"shared token budget store {probe.where} answers the operator's ping: Tenant "
                f"{tenant.name}'s budget counts every replica of its AgentDeployments")
    return (BUDGET_STORE, False, Reason.BUDGET_STORE_UNREACHABLE,
            f"shared token budget store {probe.where} unreachable from the operator "
            f"({probe.error or 'no answer'}); onStoreUnavailable {mode}: {_WHILE_DOWN[mode]}")


def with_budget_store(outcome: Outcome, old_conditions: list, probe: StoreProbe | None,
                      tenant: TenantView | None, generation: int, now: datetime) -> Outcome:
    """Add the condition (drop it when no store is configured any more) and an Event when its
    status flips: a Warning on losing the store, Normal on getting it back."""
    status = outcome.status
    if probe is None or tenant is None:
        if find(status.conditions, BUDGET_STORE) is None:
            return outcome
        kept = [c for c in status.conditions if c.type != BUDGET_STORE]
        return replace(outcome, status=status.model_copy(update={"conditions": kept}))
    type_, ok, reason, message = budget_store_condition(probe, tenant)
    status = set_conditions(status, now, generation, (type_, ok, reason, message))
    before = find(old_conditions, BUDGET_STORE)
    was_ok = None if before is None else before.status == "True"
    events = outcome.events
    if was_ok is not ok and not (ok and was_ok is None):
        events += (EventIntent("Normal" if ok else "Warning", reason, message),)
    return replace(outcome, status=status, events=events)
