"""Where the locally built Kubernetes binaries live (see hack/build-tools.sh)."""

from __future__ import annotations

import os
from pathlib import Path

KUBE_VERSION = "v1.36.3"
TOOLS = ("etcd", "etcdctl", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
         "kubectl", "kwok", "kwokctl", "helm")


class ToolsMissing(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("TUGBOAT_CACHE", Path.home() / ".cache" / "tugboat"))


def bin_dir() -> Path:
    return cache_dir() / "bin"


def tool(name: str) -> str:
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise ToolsMissing(f"{path} not found: build the local tools first with `make tools`")
    return str(path)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def thirdparty_crds_dir() -> Path:
    """../shared/thirdparty-crds beside the clone, unless TUGBOAT_THIRDPARTY_CRDS says otherwise."""
    env = os.environ.get("TUGBOAT_THIRDPARTY_CRDS")
    return Path(env) if env else repo_root().parent / "shared" / "thirdparty-crds"
