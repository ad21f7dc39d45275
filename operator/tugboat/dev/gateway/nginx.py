"""The gateway's data plane: Debian's nginx as a foreground child with a prefix of its own.

Decides how nginx runs here: `nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/logs/error.log`
(the `-e` keeps it from opening the packaged /var/log/nginx before it reads our config), in its
own session so it and its worker stop together; a new config is tested (`nginx -t`) before it
replaces the running one, and applied with `nginx -s reload` (the master starts new workers and
lets the old ones finish what they serve), only when the text changed.
Must not signal any nginx it did not start (the pid file is its own), nor listen off loopback.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from ..dataplane import hostproc

NGINX = "/usr/sbin/nginx"


class NginxError(RuntimeError):
    """nginx refused a configuration or did not start; the message carries its output."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (NGINX if Path(NGINX).exists() else None)
    if not found:
        raise NginxError("nginx not found (Debian: apt-get install nginx-light or nginx)")
    return found


class Nginx:
    def __init__(self, prefix: Path):
        self.prefix = Path(prefix)
        self.binary = nginx_binary()
        self.proc: subprocess.Popen | None = None
        self.applied: str | None = None
        self.reloads = 0

    @property
    def conf(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    def _argv(self, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.prefix}/", "-c", str(self.conf), "-e", str(self.error_log), *extra]

    def _prepare_dirs(self) -> None:
        for d in ("logs", "temp"):
            (self.prefix / d).mkdir(parents=True, exist_ok=True)

    def _test(self, text: str) -> None:
        """Write `text` as the config and have nginx parse it; NginxError (old file back) if it refuses."""
        previous = self.conf.read_text() if self.conf.exists() else None
        self.conf.write_text(text)
        out = subprocess.run(self._argv("-t", "-q"), capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            if previous is not None:
                self.conf.write_text(previous)
            raise NginxError(f"nginx -t refused the generated config: {out.stderr.strip()[-2000:]}")

    def start(self, text: str, port: int, timeout: float = 20.0) -> None:
        self._prepare_dirs()
        for stale in self.prefix.glob("*.sock"):  # left by an nginx that was killed
            stale.unlink()
        self._test(text)
        self.proc = hostproc.start(self._argv(), self.prefix / "logs" / "nginx.out", hostproc.base_env(),
                                   cwd=self.prefix)
        self.applied = text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NginxError(f"nginx exited {self.proc.returncode}: {hostproc.tail(self.error_log)}")
            try:
                with socket.create_connection((hostproc.LOOPBACK, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()  # a caller whose start failed has nothing to stop
        raise NginxError(f"nginx did not listen on {hostproc.LOOPBACK}:{port} within {timeout:.0f}s")

    def apply(self, text: str) -> bool:
        """Reload with `text` when it differs from what runs; True when a reload happened."""
        if text == self.applied:
            return False
        if self.proc is None or self.proc.poll() is not None:
            raise NginxError(f"nginx is not running: {hostproc.tail(self.error_log)}")
        self._test(text)
        out = subprocess.run(self._argv("-s", "reload"), capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise NginxError(f"nginx -s reload failed: {out.stderr.strip()[-2000:]}")
        self.applied = text
        self.reloads += 1
        return True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc is not None:
            # SIGTERM to the group: nginx's fast shutdown of master and workers.
            hostproc.stop(self.proc, grace=10)
            self.proc = None
