"""Child processes of the dev data plane on this machine: start, probe, stop, and loopback ports.

Decides how a child is isolated (its own session, so it and its children can be stopped together
by its process-group id) and how it is stopped (SIGTERM, then SIGKILL after a grace period).
Must never signal a process it did not start, and never bind or probe anything outside
127.0.0.0/8 (its own services use 127.0.0.1; serving pods their loopback pod IPs).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ..loopback import require_loopback_url

LOOPBACK = "127.0.0.1"


def describe(argv: list[str], limit: int = 300) -> str:
    """A command line for a one-line log entry."""
    return shlex.join(argv).replace("\n", "\\n")[:limit]


def free_port() -> int:
    """A port the kernel just handed out on loopback (ephemeral range, away from Ray's 10002+)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def venv_bin() -> str:
    """The directory of this interpreter, so `python` in a child means the venv's python."""
    return str(Path(sys.executable).parent)


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A small, explicit environment for children: a container would not see the host's variables."""
    env = {
        "PATH": f"{venv_bin()}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "PYTHONUNBUFFERED": "1",  # so the last line of output is on disk when the process dies
        # `import mlflow` starts a telemetry client that calls mlflow-telemetry.io; nothing the
        # data plane runs may leave loopback.
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    # The code under test, as an image would carry it: a checkout other than the one the venv's
    # editable install points at (a git worktree) puts itself first on PYTHONPATH.
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(extra or {})
    return env


def start(argv: list[str], log_path: Path, env: Mapping[str, str], cwd: Path | None = None,
          append: bool = False) -> subprocess.Popen:
    """Start `argv` in a new session with stdout and stderr in `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab" if append else "wb") as log:
        # The child keeps its own copy of the descriptor; ours can close right away.
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env), cwd=str(cwd) if cwd else None, start_new_session=True)


def stop(proc: subprocess.Popen, grace: float = 10.0, leader_only: bool = False) -> int | None:
    """SIGTERM the child's process group (or only the child, when it tears down its own
    children, as `ray start --block` does), SIGKILL the group after `grace` seconds.
    Returns the child's exit code."""
    if proc.poll() is None:
        if leader_only:
            proc.terminate()
        else:
            _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(5)
    # Grandchildren that outlived the child still carry its group id, which is ours alone.
    _signal_group(proc, signal.SIGKILL)
    return proc.returncode


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    # start_new_session made the child a group leader: its pgid is its pid, ours alone.
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET `url` answers 2xx. Only loopback URLs are ever probed (NotLoopback else)."""
    require_loopback_url(url, "a probe")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_http(url: str, proc: subprocess.Popen, timeout: float, what: str, log_path: Path) -> None:
    """Wait until `url` answers; fail early, with the log's tail, if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_ok(url):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before {url} answered; "
                               f"log {log_path}:\n{tail(log_path)}")
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s; "
                       f"log {log_path}:\n{tail(log_path)}")


def exit_code(returncode: int) -> int:
    """A Popen return code as a container runtime reports it: a signal N becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def last_line(path: Path, limit: int = 1024) -> str:
    """The last non-empty line of a log, for a status message."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:limit]
    return ""
