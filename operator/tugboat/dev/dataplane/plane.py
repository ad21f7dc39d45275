"""The dev data plane as one object: local services plus the three loops, started and stopped together.

Decides the order of things (the loops: Jobs, serving pods, the chart's operator pods, KubeRay's
stand-in and the gateway): services first (the loops need Ray's address and MLflow's URL),
loops after, then (when asked for) Prometheus, which scrapes what the serving loop runs; on
stop, Prometheus first, then the loops (they stop the processes they started), services last.
Must not be imported by the operator: it is dev infrastructure, the stand-in for what a real
cluster's nodes and KubeRay would do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kubernetes import client, config

from ..prometheus import DevPrometheus
from .jobs import JobRunner
from .kuberay import FakeKubeRay
from .loop import ReconcileLoop
from .operator_pods import OperatorPodRunner
from .ray_jobs import RayJobs
from .scrape_targets import ScrapeTargetServer, serving_targets
from .services import ServiceInfo, Services
from .serving import ServingRunner

log = logging.getLogger("tugboat.dev.dataplane")


def api_client_for(kubeconfig: str | Path) -> client.ApiClient:
    """A client of its own, so the process-wide default kubeconfig is left alone."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    return client.ApiClient(cfg)


class DataPlane:
    """`DataPlane(kubeconfig, state_dir).start()` ... `.stop()`; also a context manager.

    ray: "start" (a private local head), "auto" (reuse RAY_ADDRESS or a running cluster) or
    None (no Ray: RayJobs are left alone). mlflow_port: 0 for a free port, None for no MLflow.
    prometheus_port: 0 for a free port, None (the default) for no Prometheus; it scrapes the
    serving processes this plane runs, found through its scrape target server.
    gateway_port: the dev gateway (nginx, tugboat.dev.gateway) on 127.0.0.1 there, 0 for a free
    port, None for none.
    """

    def __init__(self, kubeconfig: str | Path, state_dir: str | Path, ray: str | None = "start",
                 mlflow_port: int | None = 0, prometheus_port: int | None = None,
                 gateway_port: int | None = None):
        self.kubeconfig = Path(kubeconfig)
        self.state_dir = Path(state_dir).resolve()
        self.services = Services(self.state_dir, ray=ray, mlflow_port=mlflow_port)
        self.gateway_port = gateway_port
        self.loops: list[ReconcileLoop] = []
        self.prometheus_port = prometheus_port
        self.scrape_targets: ScrapeTargetServer | None = None
        self.prometheus: DevPrometheus | None = None

    @property
    def info(self) -> ServiceInfo:
        return self.services.info

    @property
    def endpoints_json(self) -> Path:
        return self.state_dir / "endpoints.json"

    def start(self) -> DataPlane:
        if not self.kubeconfig.is_file():
            raise FileNotFoundError(f"kubeconfig {self.kubeconfig} not found")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        info = self.services.start()
        try:
            serving = ServingRunner(api_client_for(self.kubeconfig), self.state_dir)
            self.loops = [JobRunner(api_client_for(self.kubeconfig), self.state_dir), serving,
                          OperatorPodRunner(api_client_for(self.kubeconfig), self.state_dir)]
            if info.ray_dashboard_url:
                self.loops.append(FakeKubeRay(api_client_for(self.kubeconfig), self.state_dir,
                                              RayJobs(info.ray_dashboard_url), info.mlflow_url))
            else:
                log.info("dataplane: no Ray cluster: RayJobs are not handled")
            if self.gateway_port is not None:
                # Imported here: the gateway builds on this package's loop and process helpers.
                from ..gateway.controller import DEFAULT_GATEWAY, DevGateway

                self.loops.append(DevGateway(api_client_for(self.kubeconfig), self.state_dir / "gateway",
                                             self.gateway_port, gateway=DEFAULT_GATEWAY))
            for loop in self.loops:
                loop.start()
            if self.prometheus_port is not None:
                self._start_prometheus(serving)
        except BaseException:
            self.stop()
            raise
        log.info("dataplane: running (%s); state in %s", ", ".join(lp.name for lp in self.loops),
                 self.state_dir)
        return self

    def _start_prometheus(self, serving: ServingRunner) -> None:
        self.scrape_targets = ScrapeTargetServer(lambda: serving_targets(serving.servers.values()))
        self.prometheus = DevPrometheus(self.state_dir / "prometheus", self.scrape_targets.start().url,
                                        self.prometheus_port).start()
        self.info.prometheus_url, self.info.prometheus_pid = self.prometheus.url, self.prometheus.pid
        self.services.write_info()

    def _stop_prometheus(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
            self.info.prometheus_url = self.info.prometheus_pid = None
        if self.scrape_targets is not None:
            self.scrape_targets.stop()
            self.scrape_targets = None

    def stop(self) -> None:
        self._stop_prometheus()  # first: it would only log failed scrapes of stopping pods
        for loop in self.loops:
            try:
                loop.stop()
            except Exception:  # noqa: BLE001 - the other loops and the services must still stop
                log.exception("dataplane: stopping %s failed", loop.name)
        self.loops = []
        self.services.stop()
        log.info("dataplane: stopped")

    def __enter__(self) -> DataPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
