"""Start and stop a real local control plane with kwokctl (binary runtime, loopback only).

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real binaries built by
hack/build-tools.sh; kwok simulates the nodes of a CPU pool and a GPU pool and pod lifecycles.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from ..api.crd import crd_files
from ..builders.tenant import build_tenant_cluster_role
from .nodes import DEFAULT_POOLS, Pool, build_nodes
from .progress import Steps
from .stages import build_stages
from .tools import KUBE_VERSION, bin_dir, cache_dir, thirdparty_crds_dir, tool

PEERING = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "tugboat"}}


def pod_cidr(cluster_name: str) -> str:
    """Where kwok takes pod IPs from: a /24 inside 127.0.0.0/8 (all loopback on Linux), so serving
    processes bind their pod IP and EndpointSlices point at this machine, never at kwok's default
    10.0.0.0/24. Derived from the name, so clusters side by side (tests, the demo) hand out
    different addresses; 127.0.x and 127.1.x stay free (127.0.0.1 and the node IPs)."""
    digest = hashlib.sha256(cluster_name.encode()).digest()
    return f"127.{2 + digest[0] % 253}.{digest[1]}.0/24"


PORT_OPTIONS = ("kubeApiserverPort", "etcdPort", "etcdPeerPort", "kubeControllerManagerPort",
                "kubeSchedulerPort", "kwokControllerPort")
# Below Linux's ephemeral range (32768+) and below where kwokctl hands out ports by itself (the first
# free ones counting down from 32765): a component restarted by the chaos suite finds its port
# still free even while other clusters start on this machine.
PORT_RANGE = (20000, 32000)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_block(count: int = len(PORT_OPTIONS), attempts: int = 50) -> list[int] | None:
    """`count` consecutive free loopback ports at a random place in PORT_RANGE, or None."""
    pick = random.SystemRandom()
    for _ in range(attempts):
        base = pick.randrange(PORT_RANGE[0], PORT_RANGE[1] - count)
        ports = list(range(base, base + count))
        if all(_bindable(p) for p in ports):
            return ports
    return None


def _config(workdir: Path, cluster_name: str) -> list[dict]:
    """kwokctl's configuration documents: options, kwok's pod CIDR, then the Stages kwok plays
    (dev/stages.py)."""
    b = {t: tool(t) for t in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                              "kubectl", "kwok", "etcd", "etcdctl")}
    options = {
        "kind": "KwokctlConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "options": {
            "runtime": "binary",
            "kubeVersion": KUBE_VERSION,
            "bindAddress": "127.0.0.1",  # kwokctl binds 0.0.0.0 unless told
            "kubeApiserverBinary": b["kube-apiserver"],
            "kubeControllerManagerBinary": b["kube-controller-manager"],
            "kubeSchedulerBinary": b["kube-scheduler"],
            "kubectlBinary": b["kubectl"],
            "kwokControllerBinary": b["kwok"],
            "etcdBinary": b["etcd"],
            "etcdctlBinary": b["etcdctl"],
            "cacheDir": str(workdir / "cache"),
            **dict(zip(PORT_OPTIONS, port_block() or (), strict=False)),
        },
        "componentsPatches": [
            # Without a default route the apiserver cannot pick an advertise address by itself.
            {"name": "kube-apiserver", "extraArgs": [{"key": "advertise-address", "value": "127.0.0.1"}]},
            {"name": "etcd", "extraArgs": [{"key": "unsafe-no-fsync", "value": "true"}]},
            # One instance each: a lease renewal missed on a starved machine makes an elected
            # controller-manager exit (quotas and ServiceAccounts then stop being filled in).
            {"name": "kube-controller-manager", "extraArgs": [{"key": "leader-elect", "value": "false"}]},
            {"name": "kube-scheduler", "extraArgs": [{"key": "leader-elect", "value": "false"}]},
        ],
    }
    # kwokctl hands this document to the kwok controller (its --cidr default, for every node
    # without a spec.podCIDR of its own). kwokctl v0.8.0 copies it without applying its defaults,
    # and a zero parallelism stops kwok ("node leases parallelism must be greater than 0"), so
    # kwok's own defaults (SetObjectDefaults_KwokConfiguration) are spelled out.
    kwok = {"kind": "KwokConfiguration", "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "options": {"cidr": pod_cidr(cluster_name), "enableDebuggingHandlers": True,
                        "enableProfilingHandler": True, "enablePodsOnNodeSyncListPager": True,
                        "podPlayStageParallelism": 4, "nodePlayStageParallelism": 4,
                        "nodeLeaseParallelism": 4, "podsOnNodeSyncParallelism": 1}}
    # Supplying Stages replaces all of kwokctl's defaults (nodes included): ours keep Jobs of
    # Tugboat workloads and serving pods for the dev data plane to run for real.
    return [options, kwok, *build_stages()]


class DevCluster:
    def __init__(self, name: str = "tugboat", workdir: Path | None = None,
                 pools: tuple[Pool, ...] = DEFAULT_POOLS, platform: bool = True):
        """`platform=False`: nodes only, no CRDs, policies or peering object, as a cluster is
        before `helm install` puts them there (and owns them)."""
        self.name = name
        self.workdir = Path(workdir or cache_dir() / "kwok")
        self.pools = pools
        self.platform = platform

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "clusters" / self.name / "kubeconfig.yaml"

    def _env(self) -> dict:
        env = dict(os.environ, KWOK_WORKDIR=str(self.workdir))
        env["PATH"] = f"{bin_dir()}:{env.get('PATH', '')}"  # kwokctl runs the first kubectl on PATH
        return env

    def _kwokctl(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([tool("kwokctl"), "--name", self.name, *args], env=self._env(),
                              capture_output=True, text=True, check=check, timeout=timeout)

    def running(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        out = self._kwokctl("get", "clusters", check=False)
        return out.returncode == 0 and self.name in out.stdout.split()

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        out = subprocess.run([tool("kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                             capture_output=True, text=True, input=input, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:3])} failed: {out.stderr.strip()[-3000:]}")
        return out

    def serving(self) -> bool:
        return self.kubectl("get", "--raw", "/readyz", check=False, timeout=15).returncode == 0

    def _revive(self, steps: Steps) -> None:
        """A cluster kwokctl still records whose processes are gone (a reboot, a killed session):
        start its components again from the record (etcd's data kept); if that does not serve
        within a minute, delete it so that up() creates a fresh one."""
        steps.note(f"cluster {self.name} is recorded but its API server does not answer; starting it again")
        try:
            self._kwokctl("start", "cluster", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass  # it may still have started the components: the API server's answer decides
        deadline = time.monotonic() + 60
        while not self.serving():
            if time.monotonic() > deadline:
                steps.note(f"cluster {self.name} did not come back; deleting it and creating a new one")
                self.down()
                return
            steps.tick("the restarted API server")
            time.sleep(1)

    @property
    def up_step_count(self) -> int:
        return 6 if self.platform else 3

    def up(self, log: Callable[[str], None] = lambda _m: None, steps: Steps | None = None) -> None:
        """Start (or revive, or reuse) the cluster and install what it needs, step by step:
        each step's start, end and time go to `log` (or the caller's `steps`)."""
        steps = steps or Steps(log, total=self.up_step_count)
        with steps.step("control plane", usually="10-30 s new, 1 s reused"):
            if self.running() and not self.serving():
                self._revive(steps)
            if self.running():
                steps.note(f"cluster {self.name} already running")
            else:
                self.workdir.mkdir(parents=True, exist_ok=True)
                cfg = self.workdir / f"{self.name}.kwokctl.yaml"
                cfg.write_text(yaml.safe_dump_all(_config(self.workdir, self.name), sort_keys=False))
                steps.note(f"creating cluster {self.name}: etcd, kube-apiserver, kube-controller-manager, "
                           f"kube-scheduler, kwok on 127.0.0.1 (logs: {self.logs_dir})")
                out = self._kwokctl("--config", str(cfg), "create", "cluster", "--kubeconfig", "",
                                    "--wait", "120s", check=False)
                if out.returncode != 0:
                    raise RuntimeError(f"kwokctl create cluster failed:\n{out.stderr[-4000:]}")
        with steps.step("node pools", ", ".join(f"{p.name} x{p.nodes}" for p in self.pools)):
            self._create_nodes()
        if self.platform:
            self.install(steps)
        with steps.step("default ServiceAccount", usually="under 5 s"):
            self._wait_default_service_account(steps)

    @property
    def logs_dir(self) -> Path:
        return self.workdir / "clusters" / self.name / "logs"

    def install(self, steps: Steps) -> None:
        """Tugboat CRDs, third-party CRDs, policies, the tenants' ClusterRole, the quota wait;
        idempotent."""
        with steps.step("CRDs", "Tugboat, KubeRay, Gateway API, applied and Established", usually="2-5 s"):
            self.apply_crds()
            self._wait_crds_established()
        with steps.step("policies", "peering object, admission policies, tenant ClusterRole",
                        usually="1-3 s"):
            # HA replicas elect their active one through this object (kopf peering, mandatory).
            self.kubectl("apply", "--server-side", "--field-manager=tugboat-dev", "-f", "-",
                         input=yaml.safe_dump(PEERING))
            # Admission policies (CEL) use Tenant as their params kind: after the CRDs are established.
            from .tools import repo_root

            self.kubectl("apply", "--server-side", "--field-manager=tugboat-dev", "-f",
                         str(repo_root() / "policies"))
            # Tenant RoleBindings name this ClusterRole (the chart installs it in a real cluster).
            self._apply(build_tenant_cluster_role())
        with steps.step("quota controller", "waiting until it counts AgentDeployments",
                        usually="up to 30 s on a new cluster, 1 s reused"):
            self.wait_quota_counts_agent_deployments(steps=steps)

    def _create_nodes(self) -> None:
        nodes = yaml.safe_dump_all(build_nodes(self.pools))
        # create, not apply: a Node's status (allocatable, addresses) is kept on create only.
        self.kubectl("create", "-f", "-", input=nodes, check=False)

    def wait_quota_counts_agent_deployments(self, timeout: float = 120, steps: Steps | None = None) -> None:
        """Tenant quotas count AgentDeployments. The quota controller discovers new resources every
        30 s, and a ResourceQuota it first syncs before that leaves the count unknown until the next
        full resync (5 min), refusing creations meanwhile ("status unknown for quota"). A probe
        quota, recreated until the count shows up, waits that window out once per cluster."""
        key = "count/agentdeployments.tugboat.dev"
        probe = {"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "tugboat-quota-probe", "namespace": "default"},
                 "spec": {"hard": {key: "1000000"}}}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.kubectl("create", "-f", "-", input=yaml.safe_dump(probe), check=False)
            for _ in range(6):
                out = self.kubectl("get", "resourcequota", "tugboat-quota-probe", "-n", "default",
                                   "-o", "json", check=False)
                used = (yaml.safe_load(out.stdout or "{}").get("status") or {}).get("used") or {}
                if key in used:
                    self.kubectl("delete", "resourcequota", "tugboat-quota-probe", "-n", "default")
                    return
                if steps:
                    steps.tick("the quota controller to discover agentdeployments (it looks every 30 s)")
                time.sleep(0.5)
            self.kubectl("delete", "resourcequota", "tugboat-quota-probe", "-n", "default",
                         "--wait=true", check=False)
        raise RuntimeError(f"the quota controller never counted {key}: is kube-controller-manager up?")

    def apply_crds(self) -> None:
        docs = [yaml.safe_load(t) for t in crd_files().values()]
        self.kubectl("apply", "--server-side", "--field-manager=tugboat-dev", "-f", "-",
                     input=yaml.safe_dump_all(docs))
        self.apply_thirdparty_crds()

    def apply_thirdparty_crds(self) -> None:
        """KubeRay's and Gateway API's CRDs: what a real cluster has before Tugboat comes."""
        third = thirdparty_crds_dir()
        if not third.is_dir():
            raise RuntimeError(f"third-party CRDs not found at {third} (set TUGBOAT_THIRDPARTY_CRDS)")
        # Server-side: KubeRay's CRDs exceed the client-side last-applied annotation limit.
        self.kubectl("apply", "--server-side", "--field-manager=tugboat-dev", "-R", "-f", str(third))

    def trust(self, signing_namespaces: tuple[str, ...] = ("ml-platform",),
              system_namespace: str = "tugboat-system") -> Path:
        """Dev keys: a signing key Secret per namespace, the public key as cluster trust."""
        from tugboat_workloads.sign.keys import generate_keypair

        keys = self.workdir / "keys"
        private, public = keys / "private.pem", keys / "public.pem"
        if not private.exists():
            keys.mkdir(parents=True, exist_ok=True)
            generate_keypair(private, public)
        for ns in (system_namespace, *signing_namespaces):
            self.kubectl("create", "namespace", ns, "--save-config", check=False)
        self._apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "tugboat-trust", "namespace": system_namespace},
                     "data": {"public.pem": public.read_text()}})
        for ns in signing_namespaces:
            self._apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": "tugboat-signing-key", "namespace": ns},
                         "stringData": {"private.pem": private.read_text()}})
        return keys

    def _apply(self, manifest: dict) -> None:
        self.kubectl("apply", "--server-side", "--field-manager=tugboat-dev", "-f", "-",
                     input=yaml.safe_dump(manifest))

    def _wait_crds_established(self, timeout: float = 60) -> None:
        # `kubectl wait` errors (instead of waiting) on a CRD whose status is not written yet.
        deadline = time.monotonic() + timeout
        while True:
            out = self.kubectl("wait", "--for=condition=Established", "crd", "--all",
                               "--timeout=30s", check=False)
            if out.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRDs not established: {out.stderr.strip()}")
            time.sleep(0.5)

    def _wait_default_service_account(self, steps: Steps | None = None, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0:
                return
            if steps:
                steps.tick("kube-controller-manager to create it")
            time.sleep(0.5)
        raise RuntimeError("default ServiceAccount never appeared: is kube-controller-manager up?")

    def down(self) -> None:
        if self.kubeconfig.exists() or (self.workdir / "clusters" / self.name).exists():
            self._kwokctl("delete", "cluster", check=False)
        shutil.rmtree(self.workdir / "clusters" / self.name, ignore_errors=True)
