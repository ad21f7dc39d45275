"""The chart's optional monitoring objects: off by default; when on, exactly the promtool-tested
rules of files/alerts.yaml and the dashboard of files/dashboard.json."""

from __future__ import annotations

import json
import subprocess

import yaml

from tugboat.dev.tools import repo_root, tool

CHART = repo_root() / "charts" / "tugboat"


def _render(*sets: str) -> list[dict]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([tool("helm"), "template", "tugboat", str(CHART), "--namespace", "tugboat-system",
                          *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _kinds(docs: list[dict]) -> set[str]:
    return {d["kind"] for d in docs}


def test_monitoring_is_off_by_default():
    docs = _render()
    assert "PrometheusRule" not in _kinds(docs)
    assert not [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "tugboat-dashboard"]


def test_the_prometheus_rule_carries_the_tested_alerts_unchanged():
    [rule] = [d for d in _render("monitoring.prometheusRule.enabled=true") if d["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "tugboat-system"
    # Helm must not template the rules' own {{ $labels }} / {{ $value }}.
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())


def test_the_dashboard_config_map_carries_the_dashboard_unchanged():
    [cm] = [d for d in _render("monitoring.dashboard.enabled=true")
            if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "tugboat-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(cm["data"]["tugboat.json"]) == shipped
