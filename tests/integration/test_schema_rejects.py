"""Bad input is rejected by the API server itself, with a message naming the field."""

from __future__ import annotations

import copy

import pytest
import yaml

from tugboat.dev.tools import repo_root

EXAMPLES = repo_root() / "examples"


def _load(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _mutate(doc: dict, path: str, value) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    doc["metadata"]["name"] += "-bad"
    return doc


CASES = [
    ("10-trainingrun.yaml", "spec.training.steps", "many", "spec.training.steps"),
    ("10-trainingrun.yaml", "spec.training.precision", "fp8", "spec.training.precision"),
    ("10-trainingrun.yaml", "spec.resources.gpusPerWorker", -1, "spec.resources.gpusPerWorker"),
    ("10-trainingrun.yaml", "spec.model.topK", 9, "topK must not exceed experts"),
    ("10-trainingrun.yaml", "spec.training.checkpointInterval", 5000,
     "checkpointInterval must not exceed steps"),
    ("10-trainingrun.yaml", "spec.data.sha256", "abc", "spec.data.sha256"),
    ("10-trainingrun.yaml", "spec.resources.nodePool", "GPU_Pool", "spec.resources.nodePool"),
    ("20-modelrelease.yaml", "spec.source.modelUri", "s3://b/m",
     "set exactly one of trainingRun or modelUri"),
    ("20-modelrelease.yaml", "spec.rollout.steps", [{"weight": 150}], "spec.rollout.steps[0].weight"),
    ("20-modelrelease.yaml", "spec.rollout.steps", [], "spec.rollout.steps"),
    ("20-modelrelease.yaml", "spec.rollout.steps", [{"weight": 10, "pause": "30s"}],
     "spec.rollout.steps[0].pause"),
    ("20-modelrelease.yaml", "spec.rollout.steps", [{"weight": 10, "pause": {"duration": "soon"}}],
     "spec.rollout.steps[0].pause.duration"),
    ("20-modelrelease.yaml", "spec.rollout.analysis",
     {"checks": [{"name": "q", "metric": "Custom", "threshold": 1, "direction": "AtMost"}]},
     "metric Custom requires query"),
    ("01-tenant.yaml", "spec.rollout.maxCanaryWeight", 150, "spec.rollout.maxCanaryWeight"),
    ("30-agentdeployment.yaml", "spec.autoscaling",
     {"enabled": True, "minReplicas": 5, "maxReplicas": 2}, "minReplicas must not exceed maxReplicas"),
    ("30-agentdeployment.yaml", "spec.traffic.hostnames", ["Not A Host!"], "spec.traffic.hostnames[0]"),
    ("01-tenant.yaml", "spec.quota.cpu", "1.2.3", "spec.quota.cpu"),
    ("01-tenant.yaml", "spec.permissionLevel", "Root", "spec.permissionLevel"),
    ("01-tenant.yaml", "spec.namespaces", [], "spec.namespaces"),
]


@pytest.mark.parametrize(("example", "path", "value", "expected"), CASES,
                         ids=[f"{c[1]}={c[2]}" for c in CASES])
def test_rejected_with_field_in_message(cluster, example, path, value, expected):
    cluster.kubectl("apply", "-f", str(EXAMPLES / "00-namespaces.yaml"))
    bad = _mutate(_load(example), path, value)
    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert out.returncode != 0, f"accepted: {bad}"
    assert expected in out.stderr, out.stderr


def test_unknown_field_is_rejected(cluster):
    cluster.kubectl("apply", "-f", str(EXAMPLES / "00-namespaces.yaml"))
    bad = _mutate(_load("10-trainingrun.yaml"), "spec.training.stepz", 5)
    out = cluster.kubectl("apply", "--validate=strict", "-f", "-", input=yaml.safe_dump(bad),
                          check=False)
    assert out.returncode != 0
    assert "stepz" in out.stderr
