"""The generated CRDs install on the real API server, with printer columns and short names."""

from __future__ import annotations

import json

import pytest

from tugboat.api.kinds import KINDS


def test_all_crds_established(cluster):
    out = cluster.kubectl("get", "crd", "-o", "json").stdout
    names = {c["metadata"]["name"]: c for c in json.loads(out)["items"]}
    for kind in KINDS:
        crd = names[kind.crd_name]
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True", kind.kind
    for third in ("rayjobs.ray.io", "rayclusters.ray.io", "httproutes.gateway.networking.k8s.io"):
        assert third in names


def test_short_names_and_category(cluster):
    out = cluster.kubectl("api-resources", "--api-group=tugboat.dev", "-o", "wide").stdout
    for kind in KINDS:
        assert kind.short_name in out.split(), out
    assert "tugboat" in out



# One nested path per kind: kubectl explain reads the descriptions the API server publishes.
EXPLAIN = {
    "modelrelease.spec.rollout": ("Phased canary over the model line's AgentDeployments", "steps",
                                  "1-20 canary steps run in order"),
    "modelrelease.spec.rollout.analysis.checks.interval": ("default 15s",),
    "agentdeployment.spec.guardrails.promptFilter": ("maxPromptChars", "in characters; default 2048"),
    "tenant.spec.tokenBudget": ("windowSeconds", "Window length in seconds"),
    "trainingrun.spec.resources": ("memoryPerWorker", "Kubernetes quantity; default 4Gi"),
    "modelrelease.status.rollout.progress": ("Targets promoted / targets",),
}


@pytest.mark.parametrize("path", EXPLAIN)
def test_kubectl_explain_describes_fields(cluster, path):
    out = cluster.kubectl("explain", path).stdout
    for text in EXPLAIN[path]:
        assert text in out, out
    assert "<empty>" not in out, out
