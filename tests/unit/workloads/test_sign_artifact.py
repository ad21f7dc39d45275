"""Signing an artifact directory with real OpenSSF model-signing: manifest.json, model.sig, keys, CLI."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tugboat_workloads.sign.__main__ import main as sign_main
from tugboat_workloads.sign.keys import KEY_MISSING_EXIT, generate_keypair
from tugboat_workloads.sign.signer import SignError, SignReason, sign_artifact


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    generate_keypair(base / "key.pem", base / "key.pub")
    return base / "key.pem", base / "key.pub"


def _make_artifact(root: Path) -> Path:
    (root / "nested").mkdir(parents=True)
    (root / "model.onnx").write_bytes(os.urandom(3000))
    (root / "model_config.json").write_text('{"layers": 2}\n')
    (root / "nested" / "weights.bin").write_bytes(os.urandom(1000))
    return root


def _library_verify(root: Path, public_key: Path) -> None:
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(
        root, root / "model.sig")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sign_writes_a_manifest_of_every_file_and_a_signature_the_library_verifies(tmp_path, keys):
    root = _make_artifact(tmp_path / "art")
    signed = sign_artifact(root, keys[0])

    listed = json.loads((root / "manifest.json").read_text())
    expected = {p: _sha256(root / p) for p in ("model.onnx", "model_config.json", "nested/weights.bin")}
    assert listed == {"algorithm": "sha256", "files": expected}
    assert signed.files == expected
    assert signed.manifest_digest == _sha256(root / "manifest.json")
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["model.onnx", "model_config.json", "nested", "manifest.json", "model.sig"])
    # The plain library, with no Tugboat code, accepts the signature over the whole directory.
    _library_verify(root, keys[1])


def test_git_files_are_signed_content_too(tmp_path, keys):
    # model-signing ignores .git* paths by default; Tugboat signs every byte of the artifact.
    root = _make_artifact(tmp_path / "art")
    (root / ".gitignore").write_text("*\n")
    signed = sign_artifact(root, keys[0])
    assert signed.files[".gitignore"] == _sha256(root / ".gitignore")
    everything = model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"], ignore_git_paths=False)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys[1]).set_hashing_config(
        everything).verify(root, root / "model.sig")


def test_the_signature_covers_manifest_json_itself(tmp_path, keys):
    root = _make_artifact(tmp_path / "art")
    sign_artifact(root, keys[0])
    manifest = root / "manifest.json"
    manifest.write_text(manifest.read_text() + " ")  # same digests, different bytes
    with pytest.raises(ValueError, match="manifest.json"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys[1]).verify(
            root, root / "model.sig")


def test_resigning_is_reproducible_and_clears_leftovers_of_an_interrupted_run(tmp_path, keys):
    root = _make_artifact(tmp_path / "art")
    first = sign_artifact(root, keys[0])
    manifest_before = (root / "manifest.json").read_bytes()
    (root / ".model.sig.partial").write_text("half written")
    second = sign_artifact(root, keys[0])
    assert (root / "manifest.json").read_bytes() == manifest_before
    assert second.manifest_digest == first.manifest_digest
    assert not (root / ".model.sig.partial").exists()
    _library_verify(root, keys[1])


def test_sign_refuses_a_missing_or_empty_directory(tmp_path, keys):
    with pytest.raises(SignError) as missing:
        sign_artifact(tmp_path / "nope", keys[0])
    assert missing.value.reason == SignReason.ARTIFACT_NOT_FOUND and "nope" in missing.value.message
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "manifest.json").write_text("{}")  # an old manifest alone is not content
    with pytest.raises(SignError) as empty:
        sign_artifact(tmp_path / "empty", keys[0])
    assert empty.value.reason == SignReason.EMPTY_ARTIFACT


def test_sign_refuses_a_symlink_and_names_it(tmp_path, keys):
    root = _make_artifact(tmp_path / "art")
    (tmp_path / "outside.bin").write_bytes(b"secret")
    (root / "nested" / "link.bin").symlink_to(tmp_path / "outside.bin")
    with pytest.raises(SignError) as caught:
        sign_artifact(root, keys[0])
    assert caught.value.reason == SignReason.UNSUPPORTED_FILE
    assert "nested/link.bin" in caught.value.message
    assert not (root / "model.sig").exists()


def _write_key(path: Path, key) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


@pytest.mark.parametrize("make_key, fragment", [
    (lambda p: _write_key(p, rsa.generate_private_key(public_exponent=65537, key_size=2048)),
     "not an elliptic"),
    (lambda p: _write_key(p, ec.generate_private_key(ec.SECP256K1())), "curve secp256k1"),
    (lambda p: p.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n") and p, "not an unencrypted PEM"),
    (lambda p: p, "cannot be read"),
])
def test_sign_refuses_unusable_private_keys_naming_the_key_file(tmp_path, make_key, fragment):
    root = _make_artifact(tmp_path / "art")
    key_path = tmp_path / "bad-key.pem"
    make_key(key_path)
    with pytest.raises(SignError) as caught:
        sign_artifact(root, key_path)
    assert caught.value.reason == SignReason.INVALID_PRIVATE_KEY
    assert str(key_path) in caught.value.message and fragment in caught.value.message
    assert not (root / "manifest.json").exists()


def test_generate_keypair_writes_a_private_p256_pkcs8_key_and_its_public_key(tmp_path):
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    private_pem = (tmp_path / "k.pem").read_bytes()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, not SEC1
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(private_pem, password=None)
    public = serialization.load_pem_public_key((tmp_path / "k.pub").read_bytes())
    assert key.curve.name == "secp256r1"
    assert public.public_numbers() == key.public_key().public_numbers()


def test_cli_writes_a_succeeded_result(tmp_path, keys, capsys):
    root = _make_artifact(tmp_path / "art")
    result = tmp_path / "out" / "result.json"
    assert sign_main(["--artifact", str(root), "--private-key", str(keys[0]), "--result", str(result)]) == 0
    body = json.loads(result.read_text())
    assert body["state"] == "Succeeded"
    assert body["manifestDigest"] == _sha256(root / "manifest.json")
    assert body["files"] == sorted(["manifest.json", "model.onnx", "model.sig",
                                    "model_config.json", "nested/weights.bin"])
    assert "signed" in capsys.readouterr().out


def test_cli_module_fails_with_a_reason_and_exit_code_1(tmp_path, keys):
    result = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tugboat_workloads.sign", "--artifact", str(tmp_path / "missing"),
         "--private-key", str(keys[0]), "--result", str(result)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "ArtifactNotFound" in proc.stderr
    body = json.loads(result.read_text())
    assert body["state"] == "Failed" and body["reason"] == "ArtifactNotFound"
    assert str(tmp_path / "missing") in body["message"]


def test_cli_without_its_key_exits_with_the_key_missing_code(tmp_path, capsys):
    root = _make_artifact(tmp_path / "art")
    result = tmp_path / "result.json"
    # An optional Secret volume that is absent leaves the mount directory empty.
    missing = tmp_path / "signing" / "private.pem"
    code = sign_main(["--artifact", str(root), "--private-key", str(missing), "--result", str(result)])
    assert code == KEY_MISSING_EXIT != 1
    assert json.loads(result.read_text())["reason"] == "SigningKeyNotFound"
    assert f"signing key {missing} not found" in capsys.readouterr().err
    assert not (root / "manifest.json").exists()
