"""The world bench_rollout.py measures in: a real local control plane, the dev data plane with
Prometheus and the nginx gateway, the operator process, one tenant with two AgentDeployments
behind the gateway, each serving the first release of its own model line.

Self-contained: the model is the serving tests' tiny signed ONNX artifact (serve_fixtures: a few
seconds of training, the real export and sign CLIs), built while the control plane starts.
Releases skip the export Jobs: their status says Exported, Signed and Verified for that artifact
(as the serving integration tests write it), so the running operator goes straight on to the
rollout; the serving pods still verify the artifact's signature against the cluster's trusted key.
Must not depend on the e2e lineage (its trained models) or on anything outside 127.0.0.1.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.integration.conftest import OperatorProcess, _free_port
from tests.integration.helpers import wait_for
from tests.integration.tenancy_waits import quota_counted
from tests.integration.trust import create_trust_config_map
from tests.workloads.serve_fixtures import build_signed_artifacts
from tugboat.api.base import API_VERSION
from tugboat.builders.agent_deployment import GATEWAY_API
from tugboat.dev.api_keys import issue_api_key
from tugboat.dev.cluster import DevCluster
from tugboat.dev.dataplane.plane import DataPlane
from tugboat.dev.gateway.controller import DevGateway
from tugboat.kube.client import Kube
from tugboat.rollout.intents import ANNOTATION

PLATFORM, NS = "ml-platform", "bench-team"
GATEWAY = {"name": "tugboat", "namespace": "tugboat-gateway", "sectionName": "http"}


@dataclass(frozen=True)
class Line:
    """A model line served by one AgentDeployment on its own hostname."""

    name: str
    agent: str
    host: str

    @property
    def first(self) -> str:
        return f"{self.name}-v1"


LINES = (Line("bench-a", "agent-a", "agent-a.example.test"),
         Line("bench-b", "agent-b", "agent-b.example.test"))


@dataclass
class World:
    work: Path
    cluster: DevCluster
    kube: Kube
    plane: DataPlane
    operator: OperatorProcess
    artifact: Path
    api_key: str = ""  # the tenant's caller key, issued before its serving pods start

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def gateway(self) -> DevGateway:
        return next(loop for loop in self.plane.loops if loop.name == "gateway")

    def stop(self) -> None:
        self.operator.stop()
        self.plane.stop()
        self.cluster.down()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_world(work: Path) -> World:
    """Control plane and artifact build at once (one waits on processes, the other computes)."""
    cluster = DevCluster(f"bench-{uuid.uuid4().hex[:6]}", workdir=work / "kwok")
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        built = pool.submit(build_signed_artifacts, work / "artifacts")
        try:
            cluster.up(log=_log)
        finally:
            artifacts = built.result()
    _log(f"control plane and signed artifact ready in {time.monotonic() - started:.0f}s")
    plane = op = None
    try:
        kube = Kube.connect(str(cluster.kubeconfig))
        create_trust_config_map(cluster, artifacts.public_key.read_text())
        plane = DataPlane(cluster.kubeconfig, work / "dataplane", ray=None, mlflow_port=None,
                          prometheus_port=0, gateway_port=0).start()
        op = OperatorProcess(cluster.kubeconfig, work / "operator.log", "--standalone",
                             "--metrics-port", str(_free_port()), "--health-port", str(_free_port()),
                             "--prometheus-url", plane.info.prometheus_url,
                             "--artifact-root", str(work / "artifact-root"))
        op.wait_for_log("tugboat operator: priority")
        world = World(work, cluster, kube, plane, op, artifacts.trained)
        _tenancy(world)
        return world
    except BaseException:
        for part in (op, plane):
            if part is not None:
                part.stop()
        cluster.down()
        raise


def _apply(world: World, doc: dict) -> None:
    world.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def _tenancy(world: World) -> None:
    for ns in (PLATFORM, NS):
        world.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    _apply(world, {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": NS},
                   "spec": {"namespaces": [NS], "costCenter": "cc-bench",
                            "allowedModelLines": [line.name for line in LINES],
                            "quota": {"cpu": "16", "memory": "32Gi"}, "rollout": {"wave": 0}}})
    quota_counted(world.kube, NS)
    world.api_key = issue_api_key(world.kube, NS, NS, "bench")
    for line in LINES:
        release(world, line.first, line.name)
        _apply(world, {"apiVersion": API_VERSION, "kind": "AgentDeployment",
                       "metadata": {"name": line.agent, "namespace": NS},
                       "spec": {"modelLine": line.name, "replicas": 1,
                                "traffic": {"gatewayRef": GATEWAY, "hostnames": [line.host]}}})
    for line in LINES:
        wait_for(lambda a=line.agent, r=line.first: _serving(world.kube, a, r), timeout=180, interval=1,
                 what=f"{line.agent} serving {line.first} through the gateway")


def _serving(kube: Kube, agent: str, release_name: str) -> bool:
    st = agent_status(kube, agent)
    return (st.get("phase") == "Serving" and bool((st.get("route") or {}).get("accepted"))
            and st.get("stableRelease") == release_name)


def _verified_status(artifact: Path) -> dict:
    def cond(type_: str) -> dict:
        return {"type": type_, "status": "True", "reason": type_, "message": "written by bench_rollout",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}
    return {"artifactUri": f"file://{artifact}", "manifestDigest": "b" * 64,
            "conditions": [cond("Exported"), cond("Signed"), cond("Verified")]}


def release(world: World, name: str, line: str, rollout: dict | None = None, held: bool = False) -> None:
    """A ModelRelease of `line` made verified by hand; `held`: with a pause intent, so its rollout
    waits at weight 0 until `let_go`."""
    meta = {"name": name, "namespace": PLATFORM}
    if held:
        meta["annotations"] = {ANNOTATION: "pause@held"}
    spec = {"modelLine": line, "source": {"trainingRun": f"{name}-run"}}
    if rollout is not None:
        spec["rollout"] = rollout
    _apply(world, {"apiVersion": API_VERSION, "kind": "ModelRelease", "metadata": meta, "spec": spec})
    status = _verified_status(world.artifact)

    def kept() -> bool:
        # The operator's first pass (started by the create) may write over ours; it holds once it
        # is still ours a second later.
        def ours() -> bool:
            st = world.kube.get(API_VERSION, "ModelRelease", name, PLATFORM).get("status") or {}
            return st.get("artifactUri") == status["artifactUri"] and all(
                c in st.get("conditions", []) for c in status["conditions"])
        if not ours():
            world.kube.patch_status(API_VERSION, "ModelRelease", name, PLATFORM, status)
            return False
        time.sleep(1)
        return ours()
    wait_for(kept, timeout=60, interval=0.2, what=f"{name}'s verified status")


def let_go(world: World, name: str) -> float:
    """Lift the pause the release was applied with; returns when, on the wall clock."""
    world.kube.patch(API_VERSION, "ModelRelease", name, PLATFORM,
                     {"metadata": {"annotations": {ANNOTATION: "resume@go"}}})
    return time.time()


def rollout_of(kube: Kube, name: str) -> dict:
    return (kube.get(API_VERSION, "ModelRelease", name, PLATFORM).get("status") or {}).get("rollout") or {}


def agent_status(kube: Kube, agent: str) -> dict:
    return kube.get(API_VERSION, "AgentDeployment", agent, NS).get("status") or {}


def route_weights(kube: Kube, name: str) -> list[int]:
    route = kube.get(GATEWAY_API, "HTTPRoute", name, NS)
    return [r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]]


def pod_address(world: World, pod_prefix: str) -> str:
    """host:port where the data plane runs the first serving pod whose name starts so."""
    endpoints = json.loads(world.plane.endpoints_json.read_text())
    for key, ep in sorted(endpoints.items()):
        if key.startswith(f"{NS}/{pod_prefix}-"):
            return f"{ep['ip']}:{ep['port']}"
    raise LookupError(f"no serving pod {NS}/{pod_prefix}-* in {sorted(endpoints)}")
