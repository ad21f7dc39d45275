"""Manifests for the scale benchmark: a realistic mix of Tugboat objects that all settle without a
data plane (Tenants with their namespaces, AgentDeployments of a line with no release,
ModelReleases waiting on a missing TrainingRun, TrainingRuns queued on a full GPU pool)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
API = "tugboat.dev/v1alpha1"
SHARES = {"Tenant": 0.05, "AgentDeployment": 0.50, "ModelRelease": 0.25, "TrainingRun": 0.20}


def counts(n: int) -> dict[str, int]:
    """Objects per kind for a total of n (largest remainder, so the counts add up to n; at least
    one Tenant so the AgentDeployments have a namespace)."""
    exact = {kind: n * share for kind, share in SHARES.items()}
    out = {kind: int(v) for kind, v in exact.items()}
    for kind in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[: n - sum(out.values())]:
        out[kind] += 1
    if n and out["Tenant"] == 0:
        biggest = max(out, key=out.get)
        out[biggest] -= 1
        out["Tenant"] = 1
    return out


def _example(name: str) -> dict:
    return yaml.safe_load((ROOT / "examples" / name).read_text())


def build(n: int, prefix: str = "s") -> list[dict]:
    """Every manifest for n objects (Namespaces first, not counted in n)."""
    c = counts(n)
    tenant, agent = _example("01-tenant.yaml"), _example("30-agentdeployment.yaml")
    release, run = _example("20-modelrelease.yaml"), _example("10-trainingrun.yaml")
    docs: list[dict] = []
    tenants = [f"{prefix}-t{i}" for i in range(c["Tenant"])]
    for name in tenants:
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        t = copy.deepcopy(tenant)
        t["metadata"] = {"name": name}
        t["spec"].update(namespaces=[name], groups=[f"{name}-devs"], allowedModelLines=[f"{prefix}-line"])
        t["spec"]["quota"]["agentDeployments"] = c["AgentDeployment"] // len(tenants) + 1
        docs.append(t)
    for i in range(c["AgentDeployment"]):
        a = copy.deepcopy(agent)
        a["metadata"] = {"name": f"{prefix}-a{i}", "namespace": tenants[i % len(tenants)]}
        a["spec"]["modelLine"] = f"{prefix}-line"
        a["spec"]["replicas"] = 1
        a["spec"]["traffic"]["hostnames"] = [f"{prefix}-a{i}.example.test"]
        docs.append(a)
    for i in range(c["ModelRelease"]):
        r = copy.deepcopy(release)
        r["metadata"] = {"name": f"{prefix}-r{i}", "namespace": "ml-platform"}
        r["spec"]["modelLine"] = f"{prefix}-line-r{i}"
        r["spec"]["source"] = {"trainingRun": f"{prefix}-missing-{i}"}
        docs.append(r)
    for i in range(c["TrainingRun"]):
        t = copy.deepcopy(run)
        t["metadata"] = {"name": f"{prefix}-tr{i}", "namespace": "ml-platform"}
        t["spec"]["mlflow"]["experiment"] = f"{prefix}-scale"
        docs.append(t)
    return docs


def is_counted(doc: dict) -> bool:
    return doc["apiVersion"] == API


def bump(doc: dict) -> dict:
    """A merge patch changing `doc`'s spec (a new generation) the way a user would: more replicas,
    a larger quota, a looser export tolerance, a longer training (its ConfigMap and RayJob change)."""
    kind = doc["kind"]
    if kind == "AgentDeployment":
        return {"spec": {"replicas": 2}}
    if kind == "Tenant":
        return {"spec": {"quota": {"agentDeployments": doc["spec"]["quota"]["agentDeployments"] + 1}}}
    if kind == "ModelRelease":
        return {"spec": {"export": {"tolerance": doc["spec"]["export"]["tolerance"] * 2}}}
    return {"spec": {"training": {"steps": doc["spec"]["training"]["steps"] + 1}}}
