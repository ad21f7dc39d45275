"""The generated CRDs install on the real API server, with printer columns and short names."""

from __future__ import annotations

import json

from tugboat.api.kinds import KINDS


def test_all_crds_established(cluster):
    out = cluster.kubectl("get", "crd", "-o", "json").stdout
    names = {c["metadata"]["name"]: c for c in json.loads(out)["items"]}
    for kind in KINDS:
        crd = names[kind.crd_name]
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True", kind.kind
    for third in ("rayjobs.ray.io", "rayclusters.ray.io", "httproutes.gateway.networking.k8s.io"):
        assert third in names


def test_short_names_and_category(cluster):
    out = cluster.kubectl("api-resources", "--api-group=tugboat.dev", "-o", "wide").stdout
    for kind in KINDS:
        assert kind.short_name in out.split(), out
    assert "tugboat" in out

