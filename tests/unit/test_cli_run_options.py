"""`tugboat run` options reach the operator's settings object."""

from typer.testing import CliRunner

import tugboat.operator_main
from tugboat.cli import app


def settings_of(monkeypatch, *args: str, env: dict | None = None):
    seen = {}

    def fake_main(**kwargs):
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(tugboat.operator_main, "main", fake_main)
    result = CliRunner().invoke(app, ["run", "--standalone", *args], env=env or {})
    assert result.exit_code == 0, result.output
    return seen["settings"]


def test_prometheus_url_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.delenv("TUGBOAT_PROMETHEUS_URL", raising=False)
    assert settings_of(monkeypatch).prometheus_url is None
    assert settings_of(monkeypatch, "--prometheus-url", "http://127.0.0.1:9090").prometheus_url == (
        "http://127.0.0.1:9090")
    assert settings_of(monkeypatch, env={"TUGBOAT_PROMETHEUS_URL": "http://prometheus.monitoring:9090"}
                       ).prometheus_url == "http://prometheus.monitoring:9090"


def test_a_malformed_prometheus_url_is_refused_before_the_operator_starts(monkeypatch):
    monkeypatch.setattr(tugboat.operator_main, "main", lambda **_: 0)
    result = CliRunner().invoke(app, ["run", "--standalone", "--prometheus-url", "127.0.0.1:9090"])
    assert result.exit_code == 2 and "--prometheus-url" in result.output


def test_release_namespaces_default_to_the_platform_namespace(monkeypatch):
    monkeypatch.delenv("TUGBOAT_RELEASE_NAMESPACES", raising=False)
    assert settings_of(monkeypatch).release_namespaces == ("ml-platform",)
    assert settings_of(monkeypatch, "--release-namespaces", "ml-platform, ml-staging").release_namespaces == (
        "ml-platform", "ml-staging")


def test_reserved_namespaces_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.delenv("TUGBOAT_RESERVED_NAMESPACES", raising=False)
    assert settings_of(monkeypatch).reserved_namespaces == ()
    assert settings_of(monkeypatch, "--reserved-namespaces", "istio-*, cert-manager").reserved_namespaces == (
        "istio-*", "cert-manager")
    from_env = settings_of(monkeypatch, env={"TUGBOAT_RESERVED_NAMESPACES": "vault"})
    assert from_env.reserved_namespaces == ("vault",)
