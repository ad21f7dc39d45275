"""`kubectl tugboat` as kubectl itself finds it: the kubectl-tugboat executable on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.helpers import condition_is, wait_for
from tugboat.api.base import API_VERSION
from tugboat.dev.tools import tool

NS = "plugin-demo"
DIGEST = "0" * 64


def kubectl_plugin(cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    assert shutil.which("kubectl-tugboat", path=str(bin_dir)), "kubectl-tugboat is not installed"
    env = dict(os.environ, **(env or {}), PATH=f"{bin_dir}:{os.environ.get('PATH', '')}",
               KUBECONFIG=str(cluster.kubeconfig))
    return subprocess.run([tool("kubectl"), "tugboat", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_lineage_and_status_through_kubectl(cluster, kube, operator):
    cluster.kubectl("create", "namespace", NS, check=False)
    run = {"apiVersion": API_VERSION, "kind": "TrainingRun", "metadata": {"name": "moe", "namespace": NS},
           "spec": {"data": {"uri": "builtin://arithmetic?samples=64&seed=1", "sha256": DIGEST},
                    "resources": {"nodePool": "no-such-pool"}}}
    release = {"apiVersion": API_VERSION, "kind": "ModelRelease",
               "metadata": {"name": "moe-v1", "namespace": NS},
               "spec": {"modelLine": "moe", "source": {"trainingRun": "moe"}}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([run, release]))
    wait_for(condition_is(kube, "TrainingRun", "moe", NS, "Valid", "False"), what="TrainingRun judged")
    wait_for(lambda: (kube.get(API_VERSION, "ModelRelease", "moe-v1", NS).get("status") or {}).get("phase"),
             what="ModelRelease judged")

    out = kubectl_plugin(cluster, "lineage", "-n", NS)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"TrainingRun/moe ({NS})  Invalid"), out.stdout
    assert "! UnknownNodePool: spec.resources.nodePool" in lines[1], out.stdout
    assert lines[2].startswith(f"   └─ ModelRelease/moe-v1 ({NS})  Pending  [line moe]"), out.stdout

    out = kubectl_plugin(cluster, "status", "tr", "moe", "-n", NS)
    assert out.returncode == 0, out.stderr
    assert "TrainingRun/moe  phase Invalid" in out.stdout
    assert "Valid        False    UnknownNodePool" in out.stdout

    missing = kubectl_plugin(cluster, "status", "mr", "nope", "-n", NS)
    assert missing.returncode == 1 and "ModelRelease nope not found" in missing.stderr


def test_report_through_kubectl(cluster, kube, operator, tmp_path):
    """The plugin writes the same file as `tugboat report`; absent MLflow/Prometheus say why."""
    cluster.kubectl("create", "namespace", NS, check=False)
    run = {"apiVersion": API_VERSION, "kind": "TrainingRun", "metadata": {"name": "moe-rep", "namespace": NS},
           "spec": {"data": {"uri": "builtin://arithmetic?samples=64&seed=1", "sha256": DIGEST},
                    "resources": {"nodePool": "no-such-pool"}}}
    release = {"apiVersion": API_VERSION, "kind": "ModelRelease",
               "metadata": {"name": "moe-report", "namespace": NS},
               "spec": {"modelLine": "moe", "source": {"trainingRun": "moe-rep"}}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([run, release]))
    def phase():
        return (kube.get(API_VERSION, "ModelRelease", "moe-report", NS).get("status") or {}).get("phase")
    wait_for(phase, what="ModelRelease judged")

    page = tmp_path / "release.html"
    env = {"TUGBOAT_PROMETHEUS_URL": "", "TUGBOAT_MLFLOW_URI": ""}
    out = kubectl_plugin(cluster, "report", "modelrelease/moe-report", "-n", NS, "-o", str(page), env=env)
    assert out.returncode == 0, out.stderr
    assert f"wrote {page}" in out.stdout
    html = page.read_text()
    assert f"<title>Tugboat report: ModelRelease {NS}/moe-report</title>" in html
    assert f"<tr><th>Phase</th><td>{phase()}</td></tr>" in html
    assert "No weights over time: no Prometheus URL given" in html
    assert f"TrainingRun {NS}/moe-rep" in html and "no MLflow tracking URI given" in html

    bad = kubectl_plugin(cluster, "report", "agentdeployment/x", "-n", NS, "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 2 and "expected trainingrun/NAME or modelrelease/NAME" in bad.stderr
    missing = kubectl_plugin(cluster, "report", "mr/nope", "-n", NS, "-o", str(tmp_path / "nope.html"))
    assert missing.returncode == 1 and "nope" in missing.stderr and not (tmp_path / "nope.html").exists()
