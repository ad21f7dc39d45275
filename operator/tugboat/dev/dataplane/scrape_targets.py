"""HTTP service discovery for the dev Prometheus: the serving processes the data plane runs.

Debian's Prometheus has no Kubernetes discovery, so the data plane tells it what to scrape in
the `http_sd_configs` format ([{"targets": ["host:port"], "labels": {...}}]), from its own
record of running serving processes: the target is the address a process really listens on,
the labels are the pod's namespace and name, its Tugboat identity (release, track, tenant,
agent_deployment, as the runtime's own series name them) and `__metrics_path__` from its
`prometheus.io/path` annotation. Pods annotated `prometheus.io/scrape: "false"` are left out.
Must not filter addresses: the loopback guard is Prometheus' own relabel rule
(dev/prometheus.py), so it holds for whatever any discovery hands it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .hostproc import LOOPBACK

log = logging.getLogger("tugboat.dev.dataplane.scrape_targets")

SD_PATH = "/targets"
# Pod label -> target label; the names are the serving runtime's own (metrics.BASE_LABELS).
IDENTITY_LABELS = {"tugboat.dev/release": "release", "tugboat.dev/track": "track",
                   "tugboat.dev/tenant": "tenant", "tugboat.dev/agent-deployment": "agent_deployment"}


@dataclass(frozen=True)
class ScrapeTarget:
    address: str  # host:port the serving process listens on
    namespace: str
    pod: str
    labels: Mapping[str, str] = field(default_factory=dict)  # the pod's labels
    annotations: Mapping[str, str] = field(default_factory=dict)


def target_group(target: ScrapeTarget) -> dict:
    labels = {"namespace": target.namespace, "pod": target.pod}
    labels |= {name: target.labels[key] for key, name in IDENTITY_LABELS.items() if key in target.labels}
    path = target.annotations.get("prometheus.io/path")
    if path:
        labels["__metrics_path__"] = path
    return {"targets": [target.address], "labels": labels}


def build_target_groups(targets: Iterable[ScrapeTarget]) -> list[dict]:
    """One group per target, sorted, so an unchanged data plane serves an unchanged document."""
    wanted = [t for t in targets if t.annotations.get("prometheus.io/scrape") != "false"]
    return [target_group(t) for t in sorted(wanted, key=lambda t: (t.namespace, t.pod, t.address))]


def serving_targets(servers: Iterable) -> list[ScrapeTarget]:
    """The live processes of a ServingRunner (`Server` records) as scrape targets."""
    targets = []
    for server in list(servers):  # a copy: the serving loop's thread adds and removes servers
        if server.proc is None or server.proc.poll() is not None:
            continue  # crashed or not started: nothing listens there now
        meta = server.pod["metadata"]
        targets.append(ScrapeTarget(f"{server.ip}:{server.port}", meta["namespace"], meta["name"],
                                    meta.get("labels") or {}, meta.get("annotations") or {}))
    return targets


class ScrapeTargetServer:
    """GET /targets on 127.0.0.1 answers `build_target_groups(source())`, read afresh per request."""

    def __init__(self, source: Callable[[], Iterable[ScrapeTarget]], port: int = 0):
        self._source = source
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the scrape target server is not running")
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}{SD_PATH}"

    def start(self) -> ScrapeTargetServer:
        self._httpd = ThreadingHTTPServer((LOOPBACK, self._port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="dataplane-scrape-targets", daemon=True)
        self._thread.start()
        log.info("scrape targets: serving %s", self.url)
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        source = self._source

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
                if self.path.split("?")[0] != SD_PATH:
                    self.send_error(404)
                    return
                try:
                    body = json.dumps(build_target_groups(source())).encode()
                except Exception:  # noqa: BLE001 - Prometheus keeps its last targets on a 500
                    log.exception("scrape targets: building the target list failed")
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:  # one GET a second is not worth a log line
                pass

        return Handler
