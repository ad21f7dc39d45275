"""The dev gateway's controller: watch Gateway API objects, program nginx, write their status.

Decides the order of one pass (gather every GatewayClass, Gateway, HTTPRoute, ReferenceGrant,
Service, EndpointSlice, Pod and Namespace → plan → render → reload nginx only if the text changed →
write each status that changed, once) and what the dev cluster gets at start: our GatewayClass
(`tugboat-dev`, controllerName `tugboat.dev/dev-gateway`, as NGINX Gateway Fabric's chart
installs its class) and, when asked, a Gateway that admits routes from every namespace. Every
HTTP listener is served on the one loopback port of this gateway (127.0.0.1:<port>); a
listener's own `port` is kept in its status only. Writes DIR/gateway.json ({"url", "port",
"nginxPid", "gatewayClass", "gateway"}) for the demo and `tugboat dev traffic`.
Must not send traffic anywhere but loopback endpoints (plan and render refuse the rest), nor
write any object's spec.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from ..dataplane import hostproc
from ..dataplane.loop import ReconcileLoop, WatchTarget
from .attach import GROUP
from .nginx import Nginx, NginxError
from .nginx_conf import NginxSettings, render
from .plan import Observed, Plan, Routing, plan
from .status import gateway_class_status, gateway_status, route_parents, without_times

API_VERSION = f"{GROUP}/v1"
CONTROLLER_NAME = "tugboat.dev/dev-gateway"
GATEWAY_CLASS = "tugboat-dev"
# Where the operator's tenant NetworkPolicies expect the gateway (Settings.gateway_namespace).
DEFAULT_GATEWAY = ("tugboat-gateway", "tugboat")


def gateway_class_manifest() -> dict:
    return {"apiVersion": API_VERSION, "kind": "GatewayClass", "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": CONTROLLER_NAME,
                     "description": "Dev only: nginx on 127.0.0.1, programmed by tugboat.dev.gateway"}}


def gateway_manifest(namespace: str, name: str) -> dict:
    return {"apiVersion": API_VERSION, "kind": "Gateway", "metadata": {"name": name, "namespace": namespace},
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [
                {"name": "http", "protocol": "HTTP", "port": 80,
                 "allowedRoutes": {"namespaces": {"from": "All"}}}]}}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DevGateway(ReconcileLoop):
    """`DevGateway(api_client, work_dir, port=0).start()` ... `.stop()`; `url` is where it listens."""

    name = "gateway"
    targets = tuple(WatchTarget(p, GROUP, "v1") for p in
                    ("gatewayclasses", "gateways", "httproutes", "referencegrants")) + (
        WatchTarget("services"), WatchTarget("endpointslices"), WatchTarget("namespaces"),
        WatchTarget("pods"))

    def __init__(self, api_client: client.ApiClient, work_dir: str | Path, port: int = 0,
                 gateway: tuple[str, str] | None = None):
        super().__init__(api_client)
        self.work_dir = Path(work_dir).resolve()
        self.port = port or hostproc.free_port()
        self.nginx = Nginx(self.work_dir / "nginx")
        self.settings = NginxSettings(self.nginx.prefix, self.port, run_as_root=os.geteuid() == 0)
        self.gateway = gateway
        self.programmed_at: float | None = None  # monotonic time nginx last took a new config
        self._written: dict[tuple[str, str, str], object] = {}

    @property
    def url(self) -> str:
        return f"http://{self.settings.listen}:{self.port}"

    @property
    def gateway_json(self) -> Path:
        return self.work_dir / "gateway.json"

    def start(self) -> DevGateway:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.kube.apply(gateway_class_manifest())
        if self.gateway:
            ns, name = self.gateway
            self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            self.kube.apply(gateway_manifest(ns, name))
        self.nginx.start(render(Routing((), {}), self.settings), self.port)
        self.gateway_json.write_text(json.dumps({
            "url": self.url, "port": self.port, "nginxPid": self.nginx.pid, "gatewayClass": GATEWAY_CLASS,
            "gateway": "/".join(self.gateway) if self.gateway else None}, indent=2) + "\n")
        self.log.info("gateway: nginx on %s (pid %s), GatewayClass %s", self.url, self.nginx.pid,
                      GATEWAY_CLASS)
        super().start()
        return self

    def shutdown(self) -> None:
        self.nginx.stop()
        self.log.info("gateway: nginx stopped")

    def _observe(self) -> Observed:
        k = self.kube
        return Observed(CONTROLLER_NAME, k.list(API_VERSION, "GatewayClass"), k.list(API_VERSION, "Gateway"),
                        k.list(API_VERSION, "HTTPRoute"), k.list("v1", "Service"),
                        k.list("discovery.k8s.io/v1", "EndpointSlice"), k.list(API_VERSION, "ReferenceGrant"),
                        k.list("v1", "Namespace"), k.list("v1", "Pod"))

    def reconcile_all(self) -> None:
        observed = self._observe()
        decided = plan(observed)
        programmed = True
        try:
            if self.nginx.apply(render(decided.routing, self.settings)):
                self.programmed_at = time.monotonic()
                self.log.info("gateway: nginx reloaded (%d upstreams, %d servers)",
                              len(decided.routing.upstreams), len(decided.routing.servers))
            self.clear_error("nginx")
        except NginxError as exc:
            programmed = False
            self.report_error("nginx", exc)
        self._report_dropped(decided)
        self._write_statuses(observed, decided, programmed)

    def _report_dropped(self, decided: Plan) -> None:
        for outcome in decided.routes.values():
            for b in outcome.backends:
                if b.dropped:
                    self.report_error(f"backend {b.name}", ValueError(
                        f"endpoints {', '.join(b.dropped)} are not loopback addresses: never a target"))

    def _write(self, kind: str, obj: dict, status: dict) -> None:
        meta = obj["metadata"]
        key = (kind, meta.get("namespace") or "", meta["name"])
        wanted = without_times(status)
        old = without_times({k: (obj.get("status") or {}).get(k) for k in status})
        # The second test stops a hot loop should the API server ever normalize what we wrote.
        if wanted == old or wanted == self._written.get(key):
            return
        self.kube.patch_status(API_VERSION, kind, meta["name"], meta.get("namespace"), status)
        self._written[key] = wanted

    def _write_statuses(self, observed: Observed, decided: Plan, programmed: bool) -> None:
        now = _now()
        for gc in decided.classes:
            self._write("GatewayClass", gc, gateway_class_status(gc, now))
        for gw in decided.gateways:
            self._write("Gateway", gw, gateway_status(gw, decided, programmed, now))
        for route in observed.routes:
            key = (route["metadata"]["namespace"], route["metadata"]["name"])
            outcome = decided.routes.get(key)
            if outcome is not None:
                parents = route_parents(route, outcome, CONTROLLER_NAME, now)
            else:  # not (or no longer) ours: drop the entries we wrote, if any
                old = (route.get("status") or {}).get("parents") or []
                parents = [p for p in old if p.get("controllerName") != CONTROLLER_NAME]
                if len(parents) == len(old):
                    continue
            self._write("HTTPRoute", route, {"parents": parents})
