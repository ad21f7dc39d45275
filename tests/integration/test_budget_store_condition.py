"""The BudgetStore condition on the real API server, with a real redis-server and the operator
running as `tugboat run --budget-store`: taking the store away flips the AgentDeployment's
condition to False (with a Warning event, and what the Tenant's onStoreUnavailable makes the pods
do) within a bounded wait, giving it back flips it to True again."""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import conditions, events_for, get, wait_for
from tests.redis_server import RedisServer
from tugboat.api.base import API_VERSION
from tugboat.controllers.budget_store import WATCH_SECONDS

NS, AGENT = "budget-team", "agent"
# One watch interval, one ping timeout, a reconcile pass and the status write, with room for a
# shared two-core machine.
FLIP_SECONDS = WATCH_SECONDS + 25
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def agent(kube, start_operator, store):
    op = start_operator("--priority", "1000", "--budget-store", store.url)
    op.wait_for_log("tugboat operator: priority 1000")
    kube.apply({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": NS},
                "spec": {"namespaces": [NS], "costCenter": "cc-budget", "allowedModelLines": ["moe-b"],
                         "quota": {"cpu": "4", "memory": "8Gi"}}})
    wait_for(lambda: kube.get_or_none("v1", "Namespace", NS), what=f"namespace {NS}")
    wait_for(lambda: kube.get_or_none("v1", "ServiceAccount", "default", NS), what="default ServiceAccount")
    kube.apply({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                "metadata": {"name": AGENT, "namespace": NS}, "spec": {"modelLine": "moe-b"}})
    yield op
    kube.delete(API_VERSION, "AgentDeployment", AGENT, NS)


def _budget_store(kube, status: str):
    def check():
        c = conditions(get(kube, "AgentDeployment", AGENT, NS)).get("BudgetStore")
        return c if c and c["status"] == status else None
    return check


def _column(cluster) -> str:
    """The BUDGETSTORE column of `kubectl get agd -o wide`."""
    header, row = cluster.kubectl("get", "agd", AGENT, "-n", NS, "-o", "wide").stdout.splitlines()[:2]
    at = header.index("BUDGETSTORE")  # empty cells make split() unreliable: read at the offset
    return row[at:].split()[0]


def test_the_condition_follows_the_store(cluster, kube, store, agent):
    up = wait_for(_budget_store(kube, "True"), timeout=60, what="BudgetStore True")
    assert up["reason"] == "BudgetStoreReachable" and f"127.0.0.1:{store.port}" in up["message"]
    assert _column(cluster) == "True"

    store.stop()
    lost = time.monotonic()
    down = wait_for(_budget_store(kube, "False"), timeout=FLIP_SECONDS, what="BudgetStore False")
    print(f"BudgetStore False {time.monotonic() - lost:.1f}s after the store stopped")
    assert _column(cluster) == "False"
    assert down["reason"] == "BudgetStoreUnreachable"
    assert "onStoreUnavailable FailOpen: serving uncounted" in down["message"], down["message"]
    warnings = wait_for(lambda: [e for e in events_for(kube, AGENT, NS)
                                 if e["reason"] == "BudgetStoreUnreachable" and e["type"] == "Warning"],
                        timeout=30, what="Warning event")
    assert f"127.0.0.1:{store.port}" in warnings[0]["message"]

    # The Tenant's mode changes while the store is away: the condition says what pods do now.
    closed = {"spec": {"tokenBudget": {"onStoreUnavailable": "FailClosed"}}}
    kube.patch(API_VERSION, "Tenant", NS, None, closed)
    wait_for(lambda: "FailClosed: refusing with 503" in (_budget_store(kube, "False")() or {})
             .get("message", ""), timeout=60, what="FailClosed in the message")

    store.start()
    back = time.monotonic()
    wait_for(_budget_store(kube, "True"), timeout=FLIP_SECONDS, what="BudgetStore True again")
    print(f"BudgetStore True {time.monotonic() - back:.1f}s after the store came back")
    assert wait_for(lambda: [e for e in events_for(kube, AGENT, NS) if e["reason"] == "BudgetStoreReachable"],
                    timeout=30, what="Normal event")
