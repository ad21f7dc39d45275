"""Serving CLI flags and their TUGBOAT_* environment variables."""

import pytest

from tugboat_workloads.serve.settings import SettingsError, resolve_settings

REQUIRED = ["--artifact", "/a", "--public-key", "/k.pem", "--guardrails", "/g.json", "--release", "r1",
            "--track", "canary", "--tenant", "acme", "--agent-deployment", "agent"]
ENV = {"TUGBOAT_ARTIFACT": "/env-a", "TUGBOAT_PUBLIC_KEY": "/env-k.pem", "TUGBOAT_GUARDRAILS": "/g.json",
       "TUGBOAT_RELEASE": "r2", "TUGBOAT_TRACK": "stable", "TUGBOAT_TENANT": "acme",
       "TUGBOAT_AGENT_DEPLOYMENT": "agent", "TUGBOAT_PORT": "9000", "TUGBOAT_AUDIT_LOG": "/audit"}


def test_flags_with_defaults():
    s = resolve_settings(REQUIRED, {})
    assert (s.artifact, s.public_key, s.guardrails, s.release, s.track) == (
        "/a", "/k.pem", "/g.json", "r1", "canary")
    assert (s.host, s.port, s.no_guardrails, s.fallback_artifact, s.audit_log, s.inference_workers) == (
        "127.0.0.1", 8080, False, None, None, 1)


def test_everything_from_the_environment():
    s = resolve_settings([], ENV)
    assert (s.artifact, s.public_key, s.release, s.track, s.port, s.audit_log) == (
        "/env-a", "/env-k.pem", "r2", "stable", 9000, "/audit")


def test_a_flag_wins_over_its_environment_variable():
    assert resolve_settings(["--release", "flag"], ENV).release == "flag"


def test_no_guardrails_makes_the_guardrails_file_optional():
    env = {k: v for k, v in ENV.items() if k != "TUGBOAT_GUARDRAILS"}
    with pytest.raises(SettingsError, match="--guardrails"):
        resolve_settings([], env)
    assert resolve_settings(["--no-guardrails"], env).no_guardrails
    assert resolve_settings([], {**env, "TUGBOAT_NO_GUARDRAILS": "true"}).guardrails is None


@pytest.mark.parametrize("argv, env, message", [
    ([], {k: v for k, v in ENV.items() if k != "TUGBOAT_TENANT"}, "--tenant .or TUGBOAT_TENANT. is required"),
    (["--track", "blue"], ENV, "--track must be one of stable, canary"),
    (["--port", "http"], ENV, "--port .or TUGBOAT_PORT. must be an integer"),
    (["--port", "70000"], ENV, "must be from 1 to 65535"),
    ([], {**ENV, "TUGBOAT_NO_GUARDRAILS": "maybe"}, "TUGBOAT_NO_GUARDRAILS must be true or false"),
    (["--inference-workers", "0"], ENV, "--inference-workers"),
])
def test_bad_settings_name_the_flag_and_variable(argv, env, message):
    with pytest.raises(SettingsError, match=message):
        resolve_settings(argv, env)
