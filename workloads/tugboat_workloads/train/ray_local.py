"""A private single-machine Ray cluster that stays on loopback and phones nowhere.

Decides the environment of such a cluster's processes (the training entrypoint's own ray.init()
when no RAY_ADDRESS is given, and the dev data plane's `ray start --head`) and prepares the HOME
it points them at. Must not start or connect to Ray (callers do), and must not be applied to a
real cluster: a multi-node Ray needs routable node addresses.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOOPBACK = "127.0.0.1"
BOOTSTRAP_CONFIG = "ray_bootstrap_config.yaml"


def local_ray_environment(home: Path) -> dict[str, str]:
    """Variables for every process of the cluster; Ray reads the first one when it is imported."""
    return {
        # Single-node mode: the node IP becomes 127.0.0.1, so GCS, raylet, object manager and the
        # dashboard agent listen and connect there; otherwise Ray swaps 127.0.0.1 for the
        # default-route address (services.resolve_ip_for_localhost).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        # With usage stats off, a `ray start` head still sends a "disabled" notice to
        # usage-stats.ray.io (ray-project/ray#43538): a closed loopback port receives it instead.
        "RAY_USAGE_STATS_REPORT_URL": f"http://{LOOPBACK}:9/",
        # Ray 2.60 enables token auth by default; this cluster is reachable from loopback only.
        "RAY_AUTH_MODE": "disabled",
        # Without ~/ray_bootstrap_config.yaml the dashboard probes the cloud metadata servers
        # (169.254.169.254, metadata.google.internal) to name its provider, usage stats on or off
        # (dashboard/modules/usage_stats/usage_stats_head.py, run); prepare_home writes one.
        "HOME": str(home),
    }


def prepare_home(home: Path) -> Path:
    """`home`, holding the bootstrap config that names this cluster a local (on-premises) one."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / BOOTSTRAP_CONFIG
    if not config.exists():
        config.write_text("# Read by Ray's dashboard: a local cluster, no cloud provider to detect.\n"
                          "provider:\n  type: local\n")
    return home


def default_home() -> Path:
    """The HOME of a local cluster the training entrypoint starts: one per user, kept between
    runs like Ray's own /tmp/ray."""
    return Path(tempfile.gettempdir()) / f"tugboat-ray-home-{os.getuid()}"
