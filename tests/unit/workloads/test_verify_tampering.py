"""verify_artifact against real model-signing signatures.

An intact artifact passes; every tampering is refused with the right reason and a message naming
the file or the key."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tugboat_workloads.sign.artifact_hashing import CHUNK_BYTES
from tugboat_workloads.sign.keys import generate_keypair
from tugboat_workloads.sign.signer import sign_artifact
from tugboat_workloads.verify import VerificationError, verify_artifact


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    generate_keypair(base / "signer.pem", base / "signer.pub")
    generate_keypair(base / "other.pem", base / "other.pub")
    return base


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, keys):
    """A signed artifact; each test works on its own copy."""
    root = tmp_path_factory.mktemp("pristine") / "art"
    (root / "sub").mkdir(parents=True)
    # Larger than one hashing chunk, so a flip past the first chunk must still be seen.
    (root / "model.onnx").write_bytes(os.urandom(CHUNK_BYTES + 4096))
    (root / "model_config.json").write_text('{"layers": 2, "dModel": 128}\n')
    (root / "sub" / "export_report.json").write_text('{"opset": 18}\n')
    sign_artifact(root, keys / "signer.pem")
    return root


@pytest.fixture
def artifact(pristine, tmp_path):
    return Path(shutil.copytree(pristine, tmp_path / "art"))


def _refusal(artifact: Path, public_key: Path) -> VerificationError:
    with pytest.raises(VerificationError) as caught:
        verify_artifact(artifact, public_key)
    return caught.value


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_intact_artifact_verifies_and_reports_what_it_checked(artifact, keys):
    verified = verify_artifact(artifact, keys / "signer.pub")
    assert verified.manifest_digest == hashlib.sha256((artifact / "manifest.json").read_bytes()).hexdigest()
    assert verified.files == {p: hashlib.sha256((artifact / p).read_bytes()).hexdigest()
                              for p in ("model.onnx", "model_config.json", "sub/export_report.json")}


@pytest.mark.parametrize("name, offset", [("model.onnx", 0), ("model.onnx", CHUNK_BYTES + 17),
                                          ("sub/export_report.json", 3)])
def test_one_flipped_byte_is_a_digest_mismatch_naming_the_file(artifact, keys, name, offset):
    _flip(artifact / name, offset)
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "DigestMismatch"
    assert repr(name) in error.message


def test_an_extra_file_is_unexpected_and_named(artifact, keys):
    (artifact / "sub" / "payload.py").write_text("import os\n")
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "UnexpectedFile"
    assert "'sub/payload.py'" in error.message


def test_a_removed_file_is_missing_and_named(artifact, keys):
    (artifact / "model_config.json").unlink()
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "MissingFile"
    assert "'model_config.json'" in error.message


def test_a_signature_from_another_key_is_a_bad_signature_naming_the_key(artifact, keys):
    sign_artifact(artifact, keys / "other.pem")  # a complete, self-consistent artifact from the wrong signer
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "BadSignature"
    assert str(keys / "signer.pub") in error.message
    verify_artifact(artifact, keys / "other.pub")  # the same artifact is fine for the key that signed it


def test_another_keys_signature_under_the_right_key_hint_fails_the_cryptographic_check(artifact, keys):
    signature = artifact / "model.sig"
    bundle = json.loads(signature.read_text())
    right_hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    sign_artifact(artifact, keys / "other.pem")
    forged = json.loads(signature.read_text())
    forged["verificationMaterial"]["publicKey"]["hint"] = right_hint
    signature.write_text(json.dumps(forged))
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "BadSignature"
    assert "InvalidSignature" in error.message and str(keys / "signer.pub") in error.message


def test_a_payload_edited_to_match_tampered_files_breaks_the_signature(artifact, keys):
    signature = artifact / "model.sig"
    bundle = json.loads(signature.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    signature.write_text(json.dumps(bundle))
    assert _refusal(artifact, keys / "signer.pub").reason == "BadSignature"


def test_a_tampered_file_with_a_rewritten_manifest_fails_against_the_signed_digests(artifact, keys):
    _flip(artifact / "model_config.json", 0)
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["files"]["model_config.json"] = hashlib.sha256(
        (artifact / "model_config.json").read_bytes()).hexdigest()
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "DigestMismatch"
    assert "model.sig" in error.message and "model_config.json" in error.message


def test_missing_signature_missing_manifest_and_malformed_manifest(artifact, keys):
    (artifact / "manifest.json").write_text("{\"algorithm\": \"sha256\", \"files\": ")
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "MalformedManifest" and "manifest.json" in error.message
    (artifact / "manifest.json").unlink()
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "MissingFile" and "manifest.json" in error.message
    (artifact / "model.sig").unlink()
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "MissingSignature" and "model.sig" in error.message


def test_a_symlink_in_the_artifact_is_refused(artifact, keys, tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    (artifact / "sub" / "link").symlink_to(tmp_path / "elsewhere")
    error = _refusal(artifact, keys / "signer.pub")
    assert error.reason == "UnexpectedFile" and "sub/link" in error.message


def test_an_unusable_public_key_is_named(artifact, keys, tmp_path):
    error = _refusal(artifact, tmp_path / "absent.pub")
    assert error.reason == "BadSignature" and "absent.pub" in error.message
    (tmp_path / "garbage.pub").write_text("not a key")
    error = _refusal(artifact, tmp_path / "garbage.pub")
    assert error.reason == "BadSignature" and "garbage.pub" in error.message


def test_a_missing_artifact_directory_is_named(tmp_path, keys):
    error = _refusal(tmp_path / "gone", keys / "signer.pub")
    assert error.reason == "MissingFile" and "gone" in error.message


# model.sig is left out on purpose: base64 and JSON admit equivalent spellings of the same
# signature, so some of its bit flips are harmless; its tampering has targeted tests above.
@settings(max_examples=25, deadline=None)
@given(which=st.sampled_from(["model.onnx", "model_config.json", "sub/export_report.json", "manifest.json"]),
       position=st.floats(min_value=0, max_value=1, exclude_max=True), bit=st.integers(0, 7))
def test_no_single_bit_flip_anywhere_verifies(pristine, keys, tmp_path_factory, which, position, bit):
    root = Path(shutil.copytree(pristine, tmp_path_factory.mktemp("flip") / "art"))
    target = root / which
    data = bytearray(target.read_bytes())
    data[int(position * len(data))] ^= 1 << bit
    target.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as caught:
        verify_artifact(root, keys / "signer.pub")
    # A flip inside a path listed by manifest.json shows up as a missing (and an unexpected) file.
    assert caught.value.reason in {"DigestMismatch", "MalformedManifest", "MissingFile", "UnexpectedFile"}
    shutil.rmtree(root)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tugboat_workloads.verify", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_one_line_and_exits_0_or_1(artifact, keys):
    ok = _run_cli(str(artifact), "--public-key", str(keys / "signer.pub"))
    assert ok.returncode == 0 and ok.stdout.startswith("VERIFIED") and len(ok.stdout.splitlines()) == 1
    (artifact / "extra.txt").write_text("x")
    refused = _run_cli(str(artifact), "--public-key", str(keys / "signer.pub"))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert "UnexpectedFile" in refused.stderr and "extra.txt" in refused.stderr


def test_verification_imports_neither_torch_nor_onnx():
    probe = ("import sys, tugboat_workloads.verify; "
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'onnx', 'onnxruntime'}); "
             "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
