"""Watch the shared token budget store (when `tugboat run --budget-store` names one): on a flip of
its reachability every AgentDeployment is re-judged, through the wake-up queue's workers."""

from __future__ import annotations

import threading

import kopf

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT
from ..controllers import budget_store
from ..reconcile.budget_store import StoreProbe
from . import runtime
from .standby import GATE
from .wiring import enqueue

_stop = threading.Event()


def _rejudge_all(_: StoreProbe) -> None:
    if not GATE.active():
        return  # a standby's objects are the active replica's to reconcile
    for obj in runtime.kube().list(API_VERSION, AGENT_DEPLOYMENT.kind):
        enqueue(AGENT_DEPLOYMENT, obj["metadata"]["name"], obj["metadata"]["namespace"])


@kopf.on.startup(id="watch-budget-store")
def watch_budget_store(**_) -> None:
    url = runtime.options().settings.budget_store
    if url:
        _stop.clear()
        threading.Thread(target=budget_store.watch, args=(url, _rejudge_all, _stop),
                         name="tugboat-budget-store", daemon=True).start()


@kopf.on.cleanup(id="stop-budget-store-watch")
def stop_budget_store_watch(**_) -> None:
    _stop.set()
