"""The bearer token kopf gets from our client: as the real kubernetes client stores it."""

from __future__ import annotations

import yaml
from kubernetes import client, config

from tugboat.kube.client import Kube


def _kubeconfig(tmp_path, user: dict):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    return str(path)


def _kube(kubeconfig: str) -> Kube:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return Kube(client.ApiClient(cfg))


def test_a_service_account_token_from_a_kubeconfig_reaches_kopf(tmp_path):
    kube = _kube(_kubeconfig(tmp_path, {"token": "sa-token-123"}))
    assert kube.bearer_token() == "sa-token-123"


def test_the_in_cluster_form_is_read_too():
    cfg = client.Configuration()
    cfg.api_key = {"BearerToken": "bearer from-the-mounted-file"}  # incluster_config's spelling
    assert Kube(client.ApiClient(cfg)).bearer_token() == "from-the-mounted-file"


def test_certificate_users_have_no_token(tmp_path):
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.write_text("x")
    key.write_text("x")
    kube = _kube(_kubeconfig(tmp_path, {"client-certificate": str(cert), "client-key": str(key)}))
    assert kube.bearer_token() is None
