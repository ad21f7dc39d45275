"""A real Prometheus for the dev cluster and the tests: Debian's binary on 127.0.0.1.

Decides its configuration (scrape and evaluation every second, so an analysis window of a few
seconds has samples; targets from one HTTP service discovery URL, refreshed every second), where
its state lives (a data directory of its own under the given work dir) and when it is up
(/-/ready). The loopback guard is here, as a relabel rule: a discovered target whose address is
not in 127.0.0.0/8 is dropped before any scrape (kwok's 10.0.0.x pod IPs included), whatever the
discovery says. `honor_labels`: the runtime's own release/track/tenant/agent_deployment labels
are the truth; the discovered ones only fill in (and label `up`), with no `exported_` renames.
The operator's own /metrics is a second job: the operator is no pod, so whoever starts it names
its address (`scrape_operator`), through a file_sd file Prometheus watches.
Must not bind anything but 127.0.0.1, and must not stop a process it did not start.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import yaml

from .dataplane import hostproc

log = logging.getLogger("tugboat.dev.prometheus")

SCRAPE_INTERVAL = "1s"
SD_REFRESH = "1s"
START_TIMEOUT = 60.0
JOB = "tugboat-serving"
OPERATOR_JOB = "tugboat-operator"  # the name the chart's alerts select (`up{job=~"tugboat-operator.*"}`)
OPERATOR_TARGETS = "operator-targets.json"
# Relabel regexes are anchored: the whole host:port must be a 127.x.y.z address (so neither
# 10.0.0.5:8080 nor a host name such as 127.example.com:80 passes).
LOOPBACK_TARGETS = r"127(\.[0-9]{1,3}){3}:[0-9]+"


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise FileNotFoundError("prometheus not found on PATH (Debian: apt-get install prometheus)")
    return found


def build_config(sd_url: str, operator_targets: Path) -> dict:
    """prometheus.yml: the serving job scraping what `sd_url` lists and the operator job scraping
    what `operator_targets` lists, loopback targets only."""
    keep_loopback = {"source_labels": ["__address__"], "regex": LOOPBACK_TARGETS, "action": "keep"}
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                   "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{
            "job_name": JOB,
            "honor_labels": True,
            "http_sd_configs": [{"url": sd_url, "refresh_interval": SD_REFRESH}],
            "relabel_configs": [keep_loopback],
        }, {
            "job_name": OPERATOR_JOB,
            "file_sd_configs": [{"files": [str(operator_targets)], "refresh_interval": SD_REFRESH}],
            "relabel_configs": [keep_loopback],
        }],
    }


class DevPrometheus:
    """`DevPrometheus(workdir, sd_url).start()` ... `.stop()`; `url` is its HTTP API."""

    def __init__(self, workdir: Path, sd_url: str, port: int = 0):
        self.workdir = Path(workdir)
        self.sd_url = sd_url
        self.port = port
        self.url: str | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> DevPrometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        self.scrape_operator()
        config.write_text(yaml.safe_dump(build_config(self.sd_url, self.workdir / OPERATOR_TARGETS),
                                         sort_keys=False))
        port = self.port or hostproc.free_port()
        url = f"http://{hostproc.LOOPBACK}:{port}"
        log_path = self.workdir / "prometheus.log"
        argv = [prometheus_binary(), f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={hostproc.LOOPBACK}:{port}",
                "--storage.tsdb.retention.time=1d"]
        log.info("prometheus: starting on %s (targets from %s)", url, self.sd_url)
        self._proc = hostproc.start(argv, log_path, hostproc.base_env(), cwd=self.workdir)
        try:
            hostproc.wait_http(f"{url}/-/ready", self._proc, START_TIMEOUT, "prometheus", log_path)
        except BaseException:
            self.stop()
            raise
        self.url = url
        log.info("prometheus: up at %s (pid %d)", url, self._proc.pid)
        return self

    def scrape_operator(self, *addresses: str) -> None:
        """Scrape these operator /metrics addresses (host:port) from now on, instead of any before."""
        targets = [{"targets": list(addresses)}] if addresses else []
        staged = self.workdir / f".{OPERATOR_TARGETS}"
        staged.write_text(json.dumps(targets))
        staged.replace(self.workdir / OPERATOR_TARGETS)  # Prometheus never reads half a file

    def stop(self) -> None:
        if self._proc is not None:
            code = hostproc.stop(self._proc)
            log.info("prometheus: stopped (exit %s)", code)
            self._proc = None
        self.url = None

    def __enter__(self) -> DevPrometheus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
