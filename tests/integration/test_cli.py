"""The operator's command line against real and unreachable API servers."""

from __future__ import annotations

import subprocess
import sys

import yaml


def test_unreachable_api_server_exits_with_clear_message(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "users": [{"name": "x", "user": {"token": "t"}}]}))
    out = subprocess.run([sys.executable, "-m", "tugboat", "run", "--kubeconfig", str(kubeconfig),
                          "--standalone"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:1" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_kubeconfig_exits_with_clear_message(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tugboat", "run", "--kubeconfig",
                          str(tmp_path / "nope"), "--standalone"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "cannot load Kubernetes configuration" in out.stderr
    assert "Traceback" not in out.stderr
