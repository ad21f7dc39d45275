"""The Helm chart lints, renders, and every object it renders passes the real API server's checks."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tugboat.dev.tools import repo_root, tool

CHART = repo_root() / "charts" / "tugboat"


def _helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120)


def test_chart_lints_strictly():
    # values.schema.json forbids unknown keys, so this also proves it covers every default value.
    out = _helm("lint", "--strict", str(CHART))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("value", "complaint"), [
    ("replicas=two", "at '/replicas': got string, want integer"),
    ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
    ("metrics.port=70000", "at '/metrics/port'"),
    ("resources.requests.cpu=lots", "at '/resources/requests/cpu'"),
    ("admissionPolicy=false", "additional properties 'admissionPolicy' not allowed"),
    ("monitoring.dashboard.enabled=yes-please", "at '/monitoring/dashboard/enabled'"),
    ("prometheusUrl=prometheus:9090", "at '/prometheusUrl'"),
    ("releaseNamespaces={Not_A_Label}", "at '/releaseNamespaces/0'"),
    ("budgetStore=memcached://cache:11211", "at '/budgetStore'"),
])
def test_lint_refuses_a_bad_value(value, complaint):
    out = _helm("lint", "--strict", str(CHART), "--set", value)
    assert out.returncode != 0 and complaint in out.stdout + out.stderr, out.stdout + out.stderr


def test_monitoring_switches_are_in_the_schema():
    out = _helm("lint", "--strict", str(CHART), "--set", "monitoring.prometheusRule.enabled=true",
                "--set", "monitoring.dashboard.enabled=false")
    assert out.returncode == 0, out.stdout + out.stderr


def test_rendered_chart_is_accepted_by_the_api_server(cluster):
    out = _helm("template", "tugboat", str(CHART), "--namespace", "tugboat-system",
                "--set", "mlflowTrackingUri=http://mlflow:5000", "--set", "artifactPvc=artifacts")
    assert out.returncode == 0, out.stderr
    assert "kind: Deployment" in out.stdout and "ClusterKopfPeering" in out.stdout
    cluster.kubectl("create", "namespace", "tugboat-system", check=False)
    applied = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=out.stdout, check=False)
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/tugboat-operator created (server dry run)" in applied.stdout
    group = "admissionregistration.k8s.io"
    for policy in ("agentdeployment-tenant-limits", "tenant-image-registries", "tenant-pod-security"):
        for kind in ("validatingadmissionpolicy", "validatingadmissionpolicybinding"):
            assert f"{kind}.{group}/{policy}.tugboat.dev" in applied.stdout, applied.stdout


def test_policies_can_be_left_out():
    out = _helm("template", "tugboat", str(CHART), "--set", "admissionPolicies=false")
    assert out.returncode == 0, out.stderr
    for policy in ("agentdeployment-tenant-limits", "tenant-image-registries", "tenant-pod-security"):
        assert f"{policy}.tugboat.dev" not in out.stdout
    # The operator's own namespace guard is RBAC hardening, not a tenant policy: it stays.
    assert out.stdout.count("name: operator-namespaces.tugboat.dev") == 2


def test_reserved_namespaces_reach_the_operator():
    out = _helm("template", "tugboat", str(CHART), "--set", "reservedNamespaces={istio-*,vault}")
    assert out.returncode == 0, out.stderr
    assert '{name: TUGBOAT_RESERVED_NAMESPACES, value: "istio-*,vault"}' in out.stdout
    assert "TUGBOAT_RESERVED_NAMESPACES" not in _helm("template", "tugboat", str(CHART)).stdout


def test_configuration_values_reach_the_operator_pod():
    out = _helm("template", "tugboat", str(CHART), "--set", "prometheusUrl=http://prom:9090",
                "--set", "releaseNamespaces={ml-platform,ml-staging}", "--set", "podAnnotations.a=b")
    assert out.returncode == 0, out.stderr
    assert '{name: TUGBOAT_PROMETHEUS_URL, value: "http://prom:9090"}' in out.stdout
    assert "- --release-namespaces=ml-platform,ml-staging" in out.stdout
    deployment = next(d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}
    assert "TUGBOAT_PROMETHEUS_URL" not in _helm("template", "tugboat", str(CHART)).stdout


def test_a_disruption_budget_keeps_one_replica_only_when_there_are_two():
    two = _helm("template", "tugboat", str(CHART), "--show-only", "templates/deployment.yaml")
    assert two.returncode == 0, two.stderr
    pdb = next(d for d in yaml.safe_load_all(two.stdout) if d and d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": {
        "app.kubernetes.io/name": "tugboat", "app.kubernetes.io/instance": "tugboat"}}}
    one = _helm("template", "tugboat", str(CHART), "--set", "replicas=1")
    assert one.returncode == 0 and "PodDisruptionBudget" not in one.stdout, one.stderr


def test_the_budget_store_reaches_the_operator():
    out = _helm("template", "tugboat", str(CHART), "--set", "budgetStore=redis://redis.budget:6379/0")
    assert out.returncode == 0, out.stderr
    assert '{name: TUGBOAT_BUDGET_STORE, value: "redis://redis.budget:6379/0"}' in out.stdout
    assert "TUGBOAT_BUDGET_STORE" not in _helm("template", "tugboat", str(CHART)).stdout
