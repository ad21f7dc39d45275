"""The chart's alerting rules, checked and unit-tested by promtool (Debian's prometheus package),
and proof that those unit tests catch an alert whose expression no longer fires."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tugboat.dev.tools import repo_root

ALERTS = repo_root() / "charts" / "tugboat" / "files" / "alerts.yaml"
TESTS = Path(__file__).parent / "observability" / "alerts_test.yaml"
EXPECTED = {"TugboatReleaseFailed", "TugboatReleaseRolledBack", "TugboatRouterUnhealthyTraining",
            "TugboatRouterUnhealthyServing", "TugboatReconcileErrors", "TugboatOperatorStuck"}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool not found on PATH (Debian: apt-get install prometheus)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def alert_rules(doc: dict) -> list[dict]:
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_rules_are_valid():
    done = promtool("check", "rules", str(ALERTS), cwd=ALERTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r["alert"] for r in alert_rules(yaml.safe_load(ALERTS.read_text()))} == EXPECTED


def test_every_alert_has_a_firing_and_a_quiet_case():
    cases = [c for t in yaml.safe_load(TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    for name in EXPECTED:
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name} never expected to fire"
        assert any(not c["exp_alerts"] for c in mine), f"{name} never expected to stay quiet"


def test_alert_unit_tests_pass():
    done = promtool("test", "rules", TESTS.name, cwd=TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_broken_expression_fails_the_unit_tests(name, tmp_path):
    doc = yaml.safe_load(ALERTS.read_text())
    [rule] = [r for r in alert_rules(doc) if r["alert"] == name]
    rule["expr"] = "vector(1) > 2"  # valid PromQL that never fires
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(doc))
    tests = yaml.safe_load(TESTS.read_text())
    tests["rule_files"] = ["alerts.yaml"]
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(tests))
    done = promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert done.returncode != 0 and name in done.stdout + done.stderr, done.stdout + done.stderr
