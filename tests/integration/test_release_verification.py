"""The operator's Verifying stage on real signed artifacts: tampering blocks the release."""

from __future__ import annotations

import pytest

from tugboat.controllers.model_release import _verify
from tugboat_workloads.sign.keys import generate_keypair
from tugboat_workloads.sign.signer import sign_artifact


@pytest.fixture
def signed(tmp_path):
    art = tmp_path / "artifact"
    art.mkdir()
    (art / "model.onnx").write_bytes(bytes(range(256)) * 64)
    (art / "model_config.json").write_text('{"experts": 8}')
    generate_keypair(tmp_path / "key.pem", tmp_path / "pub.pem")
    generate_keypair(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    sign_artifact(art, tmp_path / "key.pem")
    return art, (tmp_path / "pub.pem").read_text(), tmp_path


def test_intact_artifact_verifies(signed):
    art, public, _ = signed
    view = _verify(str(art), public)
    assert view.ok and len(view.manifest_digest) == 64


def _flip(art):
    data = bytearray((art / "model.onnx").read_bytes())
    data[100] ^= 1
    (art / "model.onnx").write_bytes(bytes(data))


@pytest.mark.parametrize(("tamper", "reason", "named"), [
    (_flip, "DigestMismatch", "model.onnx"),
    (lambda art: (art / "extra.bin").write_bytes(b"x"), "UnexpectedFile", "extra.bin"),
    (lambda art: (art / "model_config.json").unlink(), "MissingFile", "model_config.json"),
])
def test_tampering_is_refused(signed, tamper, reason, named):
    art, public, _ = signed
    tamper(art)
    view = _verify(str(art), public)
    assert not view.ok
    assert view.reason == reason
    assert named in view.message


def test_signature_from_another_key_is_refused(signed):
    art, _, tmp = signed
    view = _verify(str(art), (tmp / "other.pub.pem").read_text())
    assert not view.ok and view.reason == "BadSignature"
