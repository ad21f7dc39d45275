"""ONNX graphs whose weights live in external data files: the signed manifest covers every file a
graph reads, verification refuses a graph reaching for a file it does not list or outside the
artifact, and the loader hands the runtime only verified bytes (never a path to open)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_signing import signing

from tests.workloads.serve_fixtures import train_tiny_checkpoint
from tugboat_workloads.export.__main__ import main as export_main
from tugboat_workloads.serve import artifact_loader
from tugboat_workloads.serve.artifact_loader import ArtifactRefused, load_verified_model
from tugboat_workloads.sign.artifact_hashing import (
    KnownDigests,
    digests_of,
    hash_artifact,
    hash_files,
    merge_manifests,
)
from tugboat_workloads.sign.keys import generate_keypair
from tugboat_workloads.sign.manifest_file import MANIFEST_FILE, SIGNATURE_FILE, manifest_bytes
from tugboat_workloads.sign.signer import SignError, sign_artifact
from tugboat_workloads.verify import VerificationError, verify_artifact

DATA = "model.onnx.data"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(inline artifact dir, private key, public key): an untrained tiny MoE, exported for real."""
    root = tmp_path_factory.mktemp("external")
    train_tiny_checkpoint(root / "ckpt", 0)
    assert export_main(["--checkpoint", str(root / "ckpt"), "--out", str(root / "inline")]) == 0
    generate_keypair(root / "key.pem", root / "key.pub.pem")
    return root / "inline", root / "key.pem", root / "key.pub.pem"


def externalised(exported, target: Path, location: str = DATA) -> Path:
    """A copy of the export whose weights live in one external data file named `location`."""
    shutil.copytree(exported[0], target)
    model = onnx.load(str(target / "model.onnx"))
    onnx.save_model(model, str(target / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=DATA)
    if location != DATA:
        model = onnx.load(str(target / "model.onnx"), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        (target / "model.onnx").write_bytes(model.SerializeToString())
    return target


def logits(loaded, seq_len: int) -> np.ndarray:
    tokens = np.arange(2 * seq_len, dtype=np.int64).reshape(2, seq_len) % 16
    return loaded.generator.logits(tokens)


def test_a_graph_with_external_data_loads_its_signed_bytes_wherever_the_server_runs(
        exported, tmp_path, monkeypatch):
    inline = tmp_path / "inline"
    shutil.copytree(exported[0], inline)
    sign_artifact(inline, exported[1])
    artifact = externalised(exported, tmp_path / "artifact")
    signed = sign_artifact(artifact, exported[1])
    assert DATA in signed.files
    assert os.path.getsize(artifact / DATA) > os.path.getsize(artifact / "model.onnx")
    # A decoy of the same name where a path-resolving runtime would look (the working directory).
    decoy = tmp_path / "cwd"
    decoy.mkdir()
    (decoy / DATA).write_bytes(b"\0" * os.path.getsize(artifact / DATA))
    monkeypatch.chdir(decoy)
    expected = logits(load_verified_model(str(inline), str(exported[2])), 16)
    got = logits(load_verified_model(str(artifact), str(exported[2])), 16)
    np.testing.assert_allclose(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("location", ["../outside.data", "/tmp/outside.data", "sub/../../outside.data"])
def test_a_graph_reading_outside_the_artifact_is_refused_by_signing_verify_and_loader(
        exported, tmp_path, location):
    artifact = externalised(exported, tmp_path / "artifact", location)
    shutil.copy(artifact / DATA, tmp_path / "outside.data")
    with pytest.raises(SignError, match="UnsafeExternalData") as signing:
        sign_artifact(artifact, exported[1])
    assert repr(location) in str(signing.value)
    # Signed by a signer that did not look: verification and the loader still refuse it.
    sign_without_looking(artifact, exported[1])
    with pytest.raises(VerificationError) as verify:
        verify_artifact(artifact, exported[2])
    assert verify.value.reason == "UnsafeExternalData" and repr(location) in verify.value.message
    with pytest.raises(ArtifactRefused, match="UnsafeExternalData"):
        load_verified_model(str(artifact), str(exported[2]))


def test_a_graph_whose_external_data_is_not_in_the_manifest_is_refused(exported, tmp_path):
    artifact = externalised(exported, tmp_path / "artifact", "weights.bin")
    with pytest.raises(SignError, match="MissingExternalData.*weights.bin"):
        sign_artifact(artifact, exported[1])
    sign_without_looking(artifact, exported[1])
    with pytest.raises(VerificationError) as verify:
        verify_artifact(artifact, exported[2])
    assert verify.value.reason == "MissingFile" and "weights.bin" in verify.value.message


def test_external_data_swapped_after_verification_is_never_run(exported, tmp_path, monkeypatch):
    artifact = externalised(exported, tmp_path / "artifact")
    sign_artifact(artifact, exported[1])
    real_verify = artifact_loader.verify_artifact

    def verify_then_swap(*args):
        verified = real_verify(*args)
        data = bytearray((artifact / DATA).read_bytes())
        data[len(data) // 2] ^= 0x01
        (artifact / DATA).write_bytes(bytes(data))
        return verified

    monkeypatch.setattr(artifact_loader, "verify_artifact", verify_then_swap)
    with pytest.raises(ArtifactRefused, match=f"DigestMismatch: {DATA} changed after verification"):
        load_verified_model(str(artifact), str(exported[2]))


def sign_without_looking(artifact: Path, key: Path) -> None:
    """Sign as a signer that never parses graphs would (an older or foreign one): manifest.json
    and model.sig over whatever the directory holds."""
    content = hash_artifact(artifact, also_ignore=[MANIFEST_FILE])
    (artifact / MANIFEST_FILE).write_bytes(manifest_bytes(digests_of(content)))
    everything = merge_manifests(content, hash_files(artifact, [MANIFEST_FILE]))
    config = signing.Config().use_elliptic_key_signer(private_key=key)
    config.set_hashing_config(KnownDigests(everything)).sign(artifact, artifact / SIGNATURE_FILE)
