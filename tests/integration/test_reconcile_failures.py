"""No silent errors and no lost writes, on the real API server. A reconcile pass that raises
(here: a programming error injected into the operator's client for one kind of read) is said on
the object, Reconciled=False naming the error plus one Warning event, and retried with back-off;
the next good pass says Reconciled=True. Driven through the kopf-facing entry point
(`run_reconcile`), in-process. And a status decided from a stale read never lands over a newer
write (409 on the resourceVersion precondition, then a fresh pass)."""

from __future__ import annotations

import pytest

from tests.integration.helpers import wait_for
from tugboat.api.base import API_VERSION
from tugboat.api.kinds import TENANT
from tugboat.controllers.engine import apply_outcome
from tugboat.controllers.settings import Settings
from tugboat.handlers import runtime, wiring
from tugboat.kube.client import Kube
from tugboat.kube.errors import Transient
from tugboat.reconcile.outcome import Outcome

pytestmark = pytest.mark.timeout(120)
NAME = "fail-team"


class FaultyKube(Kube):
    """The real client, but listing AgentDeployments (a Tenant counts its own) raises a bug-like
    error while `broken` is set."""

    broken = True

    def list(self, api_version, kind, namespace=None, label_selector=None):
        if self.broken and kind == "AgentDeployment":
            raise RuntimeError("injected: the lister is broken")
        return super().list(api_version, kind, namespace, label_selector)


def _reconciled(kube, name):
    obj = kube.get(API_VERSION, "Tenant", name)
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "Reconciled"), None)


def _failure_events(kube) -> list[dict]:
    return [e for e in kube.list("v1", "Event", "default")
            if (e.get("involvedObject") or {}).get("name") == NAME and e.get("reason") == "ReconcileError"]


def test_an_exception_in_a_pass_is_a_condition_and_an_event_then_clears(cluster, kube):
    faulty = FaultyKube(kube.api)
    runtime.init(faulty, runtime.Options(settings=Settings()))
    kube.apply({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": NAME},
                "spec": {"namespaces": [NAME], "costCenter": "cc-f", "allowedModelLines": ["x"]}})
    try:
        wiring.run_reconcile(TENANT, NAME, None)
        cond = _reconciled(kube, NAME)
        assert cond is not None and cond["status"] == "False" and cond["reason"] == "ReconcileError", cond
        assert "RuntimeError: injected: the lister is broken" in cond["message"]
        events = _failure_events(kube)
        assert len(events) == 1 and events[0]["type"] == "Warning"
        # The same failure again (a retry) adds no second event.
        wiring.run_reconcile(TENANT, NAME, None)
        assert len(_failure_events(kube)) == 1
        # Fixed: the back-off's retry (or any event) runs a good pass, which says so.
        FaultyKube.broken = False
        wiring.run_reconcile(TENANT, NAME, None)
        wait_for(lambda: (_reconciled(kube, NAME) or {}).get("status") == "True", what="Reconciled=True")
        assert _reconciled(kube, NAME)["reason"] == "Reconciled"
    finally:
        FaultyKube.broken = False
        wiring.REQUEUE.succeeded(("Tenant", None, NAME))
        kube.delete(API_VERSION, "Tenant", NAME)


def test_a_status_decided_from_a_stale_read_never_overwrites_a_newer_write(cluster, kube):
    name = "stale-team"
    kube.apply({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
                "spec": {"namespaces": [name], "costCenter": "cc-s", "allowedModelLines": ["x"]}})
    try:
        stale = kube.get(API_VERSION, "Tenant", name)
        # Another writer (a second operator replica, a person) writes the status after our read.
        kube.patch_status(API_VERSION, "Tenant", name, None, {"phase": "WrittenByAnother"})
        outcome = Outcome(status=TENANT.status(phase="Ours", message="decided from the stale read"))
        with pytest.raises(Transient, match="changed since it was read"):
            apply_outcome(kube, TENANT, stale, outcome)
        assert kube.get(API_VERSION, "Tenant", name)["status"]["phase"] == "WrittenByAnother"
        # A fresh read decides again and its write lands.
        assert apply_outcome(kube, TENANT, kube.get(API_VERSION, "Tenant", name), outcome)
        assert kube.get(API_VERSION, "Tenant", name)["status"]["phase"] == "Ours"
    finally:
        kube.delete(API_VERSION, "Tenant", name)
