"""The running operator's Verifying stage on a real cluster: a signed artifact that was tampered
with after signing blocks its ModelRelease with Verified=False, a reason and the file or key."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration.helpers import conditions, events_for, get, wait_for
from tests.integration.trust import create_trust_config_map
from tugboat.api.base import API_VERSION
from tugboat_workloads.sign.keys import generate_keypair
from tugboat_workloads.sign.signer import sign_artifact

NS = "release-tamper"


@pytest.fixture(scope="module")
def keys(cluster, tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    generate_keypair(d / "key.pem", d / "pub.pem")
    generate_keypair(d / "other.pem", d / "other.pub.pem")
    create_trust_config_map(cluster, (d / "pub.pem").read_text())
    cluster.kubectl("create", "namespace", NS, check=False)
    return d


def _flip(art):
    data = bytearray((art / "model.onnx").read_bytes())
    data[100] ^= 1
    (art / "model.onnx").write_bytes(bytes(data))


def signed_release(cluster, kube, root, keys, name: str, key: str, tamper) -> dict:
    """A ModelRelease whose export and signing Jobs have run (files signed, status says so)."""
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": API_VERSION, "kind": "ModelRelease", "metadata": {"name": name, "namespace": NS},
        "spec": {"modelLine": "moe", "source": {"trainingRun": f"{name}-run"}}}))
    # Let the operator's first pass (waiting for the TrainingRun) land before the Jobs' results.
    obj = wait_for(lambda: (o := get(kube, "ModelRelease", name, NS)).get("status") and o,
                   what=f"{name} first status")
    art = root / "releases" / NS / f"{name}-{obj['metadata']['uid'][:8]}"
    art.mkdir(parents=True)
    (art / "model.onnx").write_bytes(bytes(range(256)) * 64)
    (art / "model_config.json").write_text('{"experts": 8}')
    sign_artifact(art, keys / key)
    tamper(art)
    done = [{"type": t, "status": "True", "reason": t, "message": "by the test",
             "lastTransitionTime": "2026-01-01T00:00:00Z"} for t in ("Exported", "Signed")]
    cluster.kubectl("patch", "modelrelease", name, "-n", NS, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"artifactUri": f"file://{art}", "conditions": done}}))
    return wait_for(lambda: (o := get(kube, "ModelRelease", name, NS))
                    and conditions(o).get("Verified", {}).get("status") in ("True", "False") and o,
                    timeout=60, what=f"{name} verified or refused")


def test_an_intact_release_verifies(cluster, kube, operator, artifact_root, keys):
    rel = signed_release(cluster, kube, artifact_root, keys, "intact", "key.pem", lambda art: None)
    verified = conditions(rel)["Verified"]
    assert verified["status"] == "True" and "2 files match" in verified["message"]
    assert len(rel["status"]["manifestDigest"]) == 64


@pytest.mark.parametrize(("name", "key", "tamper", "reason", "named"), [
    ("flipped-byte", "key.pem", _flip, "DigestMismatch", "model.onnx"),
    ("extra-file", "key.pem", lambda art: (art / "extra.bin").write_bytes(b"x"), "UnexpectedFile",
     "extra.bin"),
    ("removed-file", "key.pem", lambda art: (art / "model_config.json").unlink(), "MissingFile",
     "model_config.json"),
    ("other-key", "other.pem", lambda art: None, "BadSignature", "key"),
])
def test_tampering_blocks_the_release(cluster, kube, operator, artifact_root, keys, name, key, tamper,
                                      reason, named):
    rel = signed_release(cluster, kube, artifact_root, keys, name, key, tamper)
    verified = conditions(rel)["Verified"]
    assert (verified["status"], verified["reason"]) == ("False", reason), verified
    assert named in verified["message"]
    rel = wait_for(lambda: (o := get(kube, "ModelRelease", name, NS))["status"].get("phase") == "Failed"
                   and o, what=f"{name} Failed")
    assert conditions(rel)["Ready"]["status"] == "False"
    assert not rel["status"].get("manifestDigest")
    warnings = [e for e in events_for(kube, name, NS) if e["type"] == "Warning"]
    assert any(reason == e["reason"] for e in warnings), warnings
