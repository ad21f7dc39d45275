"""The chart's Grafana dashboard: the panels issue #9 asks for, each query valid PromQL (promtool)
over metrics the operator or the serving runtime really exports. Whether each returns data from
a real Prometheus is checked at the end of the e2e rollouts (tests/e2e/test_rollout.py)."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from tests.dashboard_queries import dashboard, queries
from tugboat.dev.tools import repo_root

VALUES = {"namespace": "ml-platform", "tenant": "team-a|team-b"}
SOURCES = (repo_root() / "operator" / "tugboat" / "metrics.py",
           repo_root() / "workloads" / "tugboat_workloads" / "serve" / "metrics.py")


def test_the_panels_the_issue_asks_for_are_there():
    titles = " | ".join(p["title"].lower() for p in dashboard()["panels"])
    for wanted in ("training loss", "tokens/s", "expert load", "router entropy band",
                   "canary weight per tenant", "against its threshold", "rollbacks"):
        assert wanted in titles, titles
    [heatmap] = [p for p in dashboard()["panels"] if p["type"] == "heatmap"]
    assert "expert" in heatmap["targets"][0]["expr"]


def test_every_query_is_valid_promql(tmp_path):
    records = [{"record": f"dashboard:query_{i}", "expr": expr}
               for i, (_, expr) in enumerate(queries(dashboard(), VALUES))]
    rules = {"groups": [{"name": "dashboard", "rules": records}]}
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found on PATH (Debian: apt-get install prometheus)"
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_is_one_that_is_exported():
    defined = {name for src in SOURCES for name in re.findall(r'"(tugboat_\w+)"', src.read_text())}
    for where, expr in queries(dashboard(), VALUES):
        for name in re.findall(r"\btugboat_\w+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in defined or base in defined, f"{where}: {name} is exported by nobody"
