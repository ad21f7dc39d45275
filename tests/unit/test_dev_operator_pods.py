"""How the dev data plane runs the chart's operator pods: kwok's stage for them, their command
line, their probe and their ServiceAccount kubeconfig. Pure rules, no cluster."""

from __future__ import annotations

import base64
import re

import pytest
import yaml

from tugboat.dev.dataplane.operator_pods import token_kubeconfig
from tugboat.dev.dataplane.podspec import PodSpecError, probe_target, with_bind
from tugboat.dev.stages import build_stages
from tugboat.dev.tools import repo_root

_LABEL = re.compile(r'^\.metadata\.labels\["([^"]+)"\]$')


def ready_stages_for(labels: dict[str, str]) -> list[str]:
    """The pod-ready* stages whose label expressions match a pending pod with `labels`."""
    def matches(expr: dict) -> bool:
        m = _LABEL.match(expr["key"])
        if not m:
            return True  # phase, conditions, deletion: the same for every pending pod
        value = labels.get(m.group(1))
        if expr["operator"] == "In":
            return value in expr["values"]
        if expr["operator"] == "NotIn":
            return value not in expr["values"]
        return (value is None) == (expr["operator"] == "DoesNotExist")
    return [s["metadata"]["name"] for s in build_stages()
            if s["metadata"]["name"].startswith("pod-ready")
            and all(matches(e) for e in s["spec"]["selector"]["matchExpressions"])]


def starts_ready(stage: str) -> bool:
    template = next(s for s in build_stages() if s["metadata"]["name"] == stage)["spec"]["next"]
    # Main containers' statuses; init containers have finished (ready: true) either way.
    return "ready: false" not in template["statusTemplate"]


def chart_pod_labels() -> dict[str, str]:
    text = (repo_root() / "charts/tugboat/templates/deployment.yaml").read_text()
    assert "app.kubernetes.io/component: operator" in text
    return {"app.kubernetes.io/name": "tugboat", "app.kubernetes.io/instance": "tugboat",
            "app.kubernetes.io/component": "operator"}


@pytest.mark.parametrize(("labels", "ready"), [
    ({}, True),
    ({"app.kubernetes.io/component": "operator", "app.kubernetes.io/name": "other"}, True),
    ({"app.kubernetes.io/name": "tugboat"}, True),
    ({"tugboat.dev/workload": "serve"}, False),
    ({"tugboat.dev/workload": "serve", "app.kubernetes.io/component": "operator"}, False),
    (chart_pod_labels(), False),
])
def test_exactly_one_stage_starts_each_pod_and_the_chart_operator_waits_for_its_probe(labels, ready):
    stages = ready_stages_for(labels)
    assert len(stages) == 1, stages
    assert starts_ready(stages[0]) is ready


def test_bind_moves_to_the_pod_ip():
    argv = ["/venv/bin/python", "-m", "tugboat", "run", "--bind=0.0.0.0", "--metrics-port=8080"]
    assert with_bind(argv, "127.9.0.4") == [*argv[:4], "--metrics-port=8080", "--bind=127.9.0.4"]
    assert with_bind(["x", "--bind", "0.0.0.0", "y"], "127.9.0.4") == ["x", "y", "--bind=127.9.0.4"]


def test_probe_is_the_readiness_probe_else_the_liveness_probe_with_named_ports():
    ports = [{"name": "metrics", "containerPort": 8080}, {"name": "health", "containerPort": 8081}]
    both = {"name": "op", "ports": ports, "livenessProbe": {"httpGet": {"path": "/live", "port": 9}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"}}}
    assert probe_target(both) == ("/healthz", 8081)
    assert probe_target({**both, "readinessProbe": None}) == ("/live", 9)
    with pytest.raises(PodSpecError, match="names port 'nope'"):
        probe_target({**both, "readinessProbe": {"httpGet": {"port": "nope"}}})
    with pytest.raises(PodSpecError, match="no httpGet readiness or liveness probe"):
        probe_target({"name": "op", "ports": ports})


def test_token_kubeconfig_carries_only_the_token_and_the_server_trust():
    doc = token_kubeconfig("https://127.0.0.1:6443", b"PEM", "tok", "system:serviceaccount:ns:sa")
    loaded = yaml.safe_load(yaml.safe_dump(doc))
    cluster = loaded["clusters"][0]["cluster"]
    assert cluster == {"server": "https://127.0.0.1:6443",
                       "certificate-authority-data": base64.b64encode(b"PEM").decode()}
    assert loaded["users"] == [{"name": "system:serviceaccount:ns:sa", "user": {"token": "tok"}}]
    assert loaded["contexts"][0]["context"] == {"cluster": "dev", "user": "system:serviceaccount:ns:sa"}
    insecure = token_kubeconfig("https://h", None, "t", "u")["clusters"][0]["cluster"]
    assert "certificate-authority-data" not in insecure
