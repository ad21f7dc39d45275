"""A private single-machine Ray: single-node on loopback, no usage reports, and a HOME whose
bootstrap config keeps the dashboard from probing cloud metadata servers."""

import yaml

from tugboat_workloads.train.ray_local import BOOTSTRAP_CONFIG, LOOPBACK, local_ray_environment, prepare_home


def test_the_cluster_is_single_node_and_reports_to_loopback_only(tmp_path):
    env = local_ray_environment(tmp_path)
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # node IP 127.0.0.1
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["RAY_USAGE_STATS_REPORT_URL"].startswith(f"http://{LOOPBACK}:")
    assert env["HOME"] == str(tmp_path)


def test_home_names_a_local_provider_and_keeps_an_existing_config(tmp_path):
    home = prepare_home(tmp_path / "home")
    config = home / BOOTSTRAP_CONFIG
    assert yaml.safe_load(config.read_text())["provider"] == {"type": "local"}
    config.write_text("provider: {type: local}  # edited\n")
    assert prepare_home(home) == home and "edited" in config.read_text()
