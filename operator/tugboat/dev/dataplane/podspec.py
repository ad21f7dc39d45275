"""A container spec -> the command line this machine runs in its place. Pure.

Decides what a kubelet and an image would otherwise decide: the argv (command + args, with
Kubernetes' `$(VAR)` expansion), which `python` runs it (this venv's), and where the container's
mount paths live on the host (every path under a mountPath is rewritten to the materialized
directory), and where it listens (its pod IP and container port). Must not touch the file
system, the cluster or the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PYTHON_NAMES = ("python", "python3")
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class PodSpecError(ValueError):
    """The pod cannot be run on the host; the message names the field."""


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known variables expand, `$$` escapes, unknown ones stay."""
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(one, text)


def _path_pattern(mount_paths: list[str]) -> re.Pattern | None:
    paths = sorted({p.rstrip("/") for p in mount_paths if p.rstrip("/")}, key=len, reverse=True)
    if not paths:
        return None
    # A mount path counts only as a whole path prefix: not inside a longer path (/x/etc/app)
    # and not as the start of a longer name (/etc/application).
    return re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, paths)) + r")(?![\w.-])")


def rewrite_paths(text: str, mounts: Mapping[str, str]) -> str:
    """Replace every mount path prefix in `text` with its host directory."""
    pattern = _path_pattern(list(mounts))
    if pattern is None:
        return text
    local = {k.rstrip("/"): v for k, v in mounts.items()}
    return pattern.sub(lambda m: local[m.group(1)], text)


def container_argv(container: Mapping, env: Mapping[str, str], mounts: Mapping[str, str],
                   python: str) -> list[str]:
    """command + args with $(VAR) expanded, mount paths rewritten and `python` made concrete."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if not command:
        # Without an image there is no ENTRYPOINT to fall back on.
        raise PodSpecError(f"container {container.get('name')!r} has no command: the dev data plane "
                           "runs command+args on the host and cannot use an image's entrypoint")
    argv = [rewrite_paths(expand_vars(a, env), mounts) for a in command + args]
    if argv[0] in PYTHON_NAMES:
        argv[0] = python
    return argv


def container_env(values: Mapping[str, str], mounts: Mapping[str, str]) -> dict[str, str]:
    """Env values with $(VAR) references to earlier variables expanded and mount paths rewritten."""
    out: dict[str, str] = {}
    for name, value in values.items():
        out[name] = rewrite_paths(expand_vars(value, out), mounts)
    return out


def container_port(container: Mapping) -> int:
    """The port a container serves on: its TCP port named `http`, else its first TCP port.
    The host process binds it on the pod's own IP, as a container would inside its pod."""
    ports = [p for p in container.get("ports") or [] if (p.get("protocol") or "TCP") == "TCP"]
    if not ports:
        raise PodSpecError(f"container {container.get('name')!r} declares no TCP containerPort: "
                           "the dev data plane binds the pod IP on that port")
    chosen = next((p for p in ports if p.get("name") == "http"), ports[0])
    return int(chosen["containerPort"])


def _without(argv: list[str], *flags: str) -> list[str]:
    """argv without the given flags, in both `--flag value` and `--flag=value` forms."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in flags)):
            out.append(arg)
    return out


def with_listen(argv: list[str], host: str, port: int) -> list[str]:
    """Drop any --port/--host the container gives and append the pod IP and its container port."""
    return [*_without(argv, "--port", "--host"), "--port", str(port), "--host", host]


def main_container(pod_spec: Mapping) -> dict:
    containers = pod_spec.get("containers") or []
    if not containers:
        raise PodSpecError("spec.containers is empty")
    return containers[0]


def readiness_path(container: Mapping, default: str = "/readyz") -> str:
    probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
    return probe.get("path") or default


def owner_kind(obj: Mapping) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("kind")
    return None


def with_bind(argv: list[str], host: str) -> list[str]:
    """Replace the address the operator's endpoints bind (`--bind`) with the pod IP: in a pod,
    0.0.0.0 means the pod's own interface; on this host it would mean every interface."""
    return [*_without(argv, "--bind"), f"--bind={host}"]


def probe_target(container: Mapping) -> tuple[str, int]:
    """(path, port) of the container's readiness probe, else its liveness probe (httpGet only);
    a named port is looked up in the container's ports."""
    for kind in ("readinessProbe", "livenessProbe"):
        get = (container.get(kind) or {}).get("httpGet")
        if not get:
            continue
        port = get.get("port")
        if isinstance(port, str) and not port.isdigit():
            named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            if port not in named:
                raise PodSpecError(f"container {container.get('name')!r}: {kind} names port "
                                   f"{port!r}, which it does not declare")
            port = named[port]
        return get.get("path") or "/", int(port)
    raise PodSpecError(f"container {container.get('name')!r} has no httpGet readiness or liveness "
                       "probe: the dev data plane could not tell when it is ready")
