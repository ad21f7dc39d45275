"""`helm install` into a real local cluster, and the chart's operator really runs.

The cluster starts bare (nodes, KubeRay's and Gateway API's CRDs; nothing of Tugboat). The dev
data plane runs the Deployment's pods as host processes with a token of the chart's
ServiceAccount, so what reconciles here does so with exactly the chart's RBAC. Then
`helm upgrade` rolls the pods (the old processes end) and `helm uninstall` leaves the CRDs and
every user object in place. That the token cannot read Secrets is test_operator_rbac's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import condition_is, wait_for
from tugboat.api.base import API_VERSION
from tugboat.dev.cluster import DevCluster
from tugboat.dev.dataplane import DataPlane
from tugboat.dev.stages import OPERATOR_SELECTOR
from tugboat.dev.tools import repo_root, tool
from tugboat.kube.client import Kube

NS, RELEASE = "tugboat-system", "tugboat"
CHART = repo_root() / "charts" / "tugboat"
WAIT = 120  # seconds, for every wait of this module
TENANT_NS = "team-helm"
SA = f"system:serviceaccount:{NS}:tugboat-operator"


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    c = DevCluster(name=f"helm-{uuid.uuid4().hex[:6]}", workdir=tmp_path_factory.mktemp("kwok-helm"),
                   platform=False)
    try:
        c.up(log=lambda m: print(m, file=sys.stderr))
        c.apply_thirdparty_crds()
        yield c
    finally:
        c.down()


@pytest.fixture(scope="module")
def kube(bare) -> Kube:
    return Kube.connect(str(bare.kubeconfig))


@pytest.fixture(scope="module")
def plane(bare, tmp_path_factory):
    dp = DataPlane(bare.kubeconfig, tmp_path_factory.mktemp("dataplane-helm"), ray=None, mlflow_port=None)
    yield dp.start()
    dp.stop()


def helm(bare, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([tool("helm"), "--kubeconfig", str(bare.kubeconfig), *args],
                         capture_output=True, text=True, timeout=WAIT + 60)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture(scope="module")
def installed(bare, plane, tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("artifacts")  # the host has no /var/lib/tugboat
    helm(bare, "install", RELEASE, str(CHART), "-n", NS, "--create-namespace",
         "--set", f"artifactRoot={artifacts}", "--wait", "--timeout", f"{WAIT}s")
    # Tenant quotas count AgentDeployments once the quota controller has seen the new CRD.
    bare.wait_quota_counts_agent_deployments()
    yield
    # Only if a test stopped before its own uninstall.
    helm(bare, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", f"{WAIT}s", check=False)


def operator_pods(kube) -> list[dict]:
    return [p for p in kube.list("v1", "Pod", NS, label_selector=OPERATOR_SELECTOR)
            if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def processes(plane) -> dict[str, dict]:
    """pod -> {ip, port, pid} of the operator processes the data plane runs."""
    path = plane.state_dir / "operator-pods.json"
    return json.loads(path.read_text()) if path.exists() else {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def log_of(plane, pod: str) -> str:
    return (plane.state_dir / "logs" / f"{NS}_{pod}.log").read_text(errors="replace")


def running_replicas(kube, plane, count: int = 2) -> list[str]:
    """Names of `count` Ready operator pods, each with a live process on its own loopback IP."""
    def check():
        pods = operator_pods(kube)
        procs = processes(plane)
        names = sorted(p["metadata"]["name"] for p in pods if ready(p))
        if len(pods) == len(names) == count and all(
                f"{NS}/{n}" in procs and alive(procs[f"{NS}/{n}"]["pid"]) for n in names):
            return names
        return None
    return wait_for(check, timeout=WAIT, what=f"{count} Ready operator pods with processes")


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def whoami(kubeconfig: Path, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([tool("kubectl"), "--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json"],
                          capture_output=True, text=True, timeout=60, check=check)


def tenant(name: str) -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
                           "spec": {"namespaces": [name], "costCenter": "cc-helm",
                                    "allowedModelLines": ["moe-arith"]}})


def active(log: str) -> bool:
    """kopf's peering as a replica logs it: it starts paused, and logs each resume and pause."""
    return log.rfind("Resuming operations") > log.rfind("Pausing operations")


def leader(plane, names: list[str]) -> str:
    """The one replica that runs; the other stays paused (a standby)."""
    def check():
        running = [n for n in names if active(log_of(plane, n))]
        return running if len(running) == 1 else None
    return wait_for(check, timeout=WAIT, what="exactly one active replica")[0]


def test_install_runs_two_replicas_with_the_chart_service_account(bare, kube, plane, installed):
    names = running_replicas(kube, plane)
    procs = processes(plane)
    ips = {procs[f"{NS}/{n}"]["ip"] for n in names}
    assert len(ips) == 2 and all(ip.startswith("127.") for ip in ips), procs
    for name in names:
        env = environ(procs[f"{NS}/{name}"]["pid"])
        assert env["POD_ID"] == name and env["TUGBOAT_SYSTEM_NAMESPACE"] == NS
        who = whoami(Path(env["KUBECONFIG"]))
        assert json.loads(who.stdout)["status"]["userInfo"]["username"] == SA
    # kopf peering: both replicas are peers of the chart's ClusterKopfPeering; one leads.
    peers = kube.get("kopf.dev/v1", "ClusterKopfPeering", "tugboat").get("status") or {}
    assert {p.split("/")[0] for p in peers} >= set(names), peers
    assert leader(plane, names) in names
    assert kube.get("policy/v1", "PodDisruptionBudget", "tugboat-operator", NS)["spec"]["minAvailable"] == 1


def test_examples_reconcile_through_the_chart_operator(bare, kube, plane, installed):
    names = running_replicas(kube, plane)
    bare.kubectl("apply", "-f", "-", input=tenant(TENANT_NS))
    wait_for(condition_is(kube, "Tenant", TENANT_NS, None, "Ready", "True"), timeout=WAIT,
             what="Tenant Ready")
    rb = kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", "tugboat-tenant", TENANT_NS)
    assert rb["roleRef"]["name"] == "tugboat-tenant"
    agent = {"apiVersion": API_VERSION, "kind": "AgentDeployment",
             "metadata": {"name": "idle", "namespace": TENANT_NS},
             "spec": {"modelLine": "moe-arith", "replicas": 1}}
    bare.kubectl("apply", "-f", "-", input=yaml.safe_dump(agent))
    wait_for(condition_is(kube, "AgentDeployment", "idle", TENANT_NS, "Valid", "True"), timeout=WAIT,
             what="AgentDeployment Valid")
    head = leader(plane, names)
    assert f"Tenant -/{TENANT_NS}" in log_of(plane, head)
    for name in names:
        log = log_of(plane, name)
        assert "forbidden" not in log.lower() and " 403" not in log, log[-4000:]


def test_upgrade_rolls_the_operator_and_the_old_processes_end(bare, kube, plane, installed):
    before = running_replicas(kube, plane)
    old_pids = [processes(plane)[f"{NS}/{n}"]["pid"] for n in before]
    helm(bare, "upgrade", RELEASE, str(CHART), "-n", NS, "--reuse-values",
         "--set", "podAnnotations.tugboat\\.dev/rolled=yes", "--wait", "--timeout", f"{WAIT}s")
    after = wait_for(lambda: (n := running_replicas(kube, plane)) and not set(n) & set(before) and n,
                     timeout=WAIT, what="two new operator pods")
    wait_for(lambda: not any(alive(p) for p in old_pids), timeout=30, what="the old processes to end")
    # Their tokens were bound to their pods: refused once the API server sees the pods gone.
    for name in before:
        old = plane.state_dir / "tokens" / NS / f"{name}.kubeconfig"
        wait_for(lambda k=old: "Unauthorized" in whoami(k, check=False).stderr, timeout=60,
                 interval=2, what=f"the token of {name} to be refused")
    pod = kube.get("v1", "Pod", after[0], NS)
    assert pod["metadata"]["annotations"]["tugboat.dev/rolled"] == "yes"
    # The new replicas reconcile: a second Tenant becomes Ready.
    bare.kubectl("apply", "-f", "-", input=tenant(f"{TENANT_NS}-2"))
    wait_for(condition_is(kube, "Tenant", f"{TENANT_NS}-2", None, "Ready", "True"), timeout=WAIT,
             what="second Tenant Ready")


def test_uninstall_keeps_crds_and_user_objects(bare, kube, plane, installed):
    running_replicas(kube, plane)
    helm(bare, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout", f"{WAIT}s")
    wait_for(lambda: not processes(plane), timeout=WAIT, what="the operator processes to end")
    assert kube.get_or_none("apps/v1", "Deployment", "tugboat-operator", NS) is None
    crds = {c["metadata"]["name"] for c in kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")}
    assert {"tenants.tugboat.dev", "agentdeployments.tugboat.dev", "modelreleases.tugboat.dev",
            "trainingruns.tugboat.dev", "clusterkopfpeerings.kopf.dev"} <= crds
    assert kube.get(API_VERSION, "Tenant", TENANT_NS)["status"]["phase"]
    assert kube.get_or_none(API_VERSION, "AgentDeployment", "idle", TENANT_NS) is not None
    assert kube.get_or_none("v1", "Namespace", TENANT_NS) is not None
