"""Dev fault rules: which serving pods start with the runtime's fault flags, and the rules file."""

from __future__ import annotations

import pytest

from tugboat.dev.dataplane.faults import (
    ERROR_RATE_ENV,
    LATENCY_ENV,
    FaultRule,
    add_rule,
    fault_env,
    read_rules,
)
from tugboat_workloads.serve.settings import resolve_settings


def pod(release: str, namespace: str) -> dict:
    return {"metadata": {"namespace": namespace, "labels": {"tugboat.dev/release": release}}}


def test_a_rule_reaches_only_its_release_and_namespace():
    rules = [FaultRule("v3", error_rate=0.5), FaultRule("v4", namespace="team-b", latency_ms=300)]
    assert fault_env(rules, pod("v3", "team-a")) == {ERROR_RATE_ENV: "0.5"}
    assert fault_env(rules, pod("v4", "team-b")) == {LATENCY_ENV: "300"}
    assert fault_env(rules, pod("v4", "team-a")) == {}
    assert fault_env(rules, pod("v1", "team-a")) == {}


def test_the_env_is_what_the_serving_runtime_reads():
    env = fault_env([FaultRule("v3", error_rate=0.25, latency_ms=40)], pod("v3", "ns"))
    settings = resolve_settings(["--artifact", "/a", "--public-key", "/k", "--no-guardrails",
                                 "--release", "v3", "--track", "canary", "--tenant", "t",
                                 "--agent-deployment", "a"], env)
    assert (settings.dev_inject_error_rate, settings.dev_inject_latency_ms) == (0.25, 40)


def test_rules_file_round_trips_and_replaces_by_release_and_namespace(tmp_path):
    assert read_rules(tmp_path) == []
    add_rule(tmp_path, FaultRule("v3", error_rate=0.5))
    add_rule(tmp_path, FaultRule("v3", namespace="team-b", latency_ms=10))
    add_rule(tmp_path, FaultRule("v3", error_rate=0.9))
    assert read_rules(tmp_path) == [FaultRule("v3", namespace="team-b", latency_ms=10),
                                    FaultRule("v3", error_rate=0.9)]


@pytest.mark.parametrize("kwargs", [{"error_rate": 1.5}, {"latency_ms": -1}])
def test_out_of_range_faults_are_refused(kwargs):
    with pytest.raises(ValueError):
        FaultRule("v3", **kwargs)
