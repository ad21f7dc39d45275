"""manifest.json format rules: canonical bytes, strict parsing, the order discrepancies are reported in."""

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tugboat_workloads.sign.manifest_file import (
    ManifestFormatError,
    VerificationReason,
    compare_digests,
    manifest_bytes,
    parse_manifest,
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=8).filter(
    lambda s: s not in (".", ".."))
_PATH = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join).filter(
    lambda p: p not in ("manifest.json", "model.sig"))


@given(st.dictionaries(_PATH, st.text(max_size=5).map(_digest), min_size=1, max_size=6))
def test_manifest_bytes_round_trip_through_parse(digests):
    raw = manifest_bytes(digests)
    assert parse_manifest(raw) == digests
    body = json.loads(raw)
    assert body["algorithm"] == "sha256"
    assert list(body["files"]) == sorted(digests)


def test_manifest_bytes_are_canonical_whatever_the_insertion_order():
    a = {"b.onnx": _digest("b"), "a/c.json": _digest("c")}
    assert manifest_bytes(a) == manifest_bytes(dict(reversed(list(a.items()))))


@pytest.mark.parametrize("raw, fragment", [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    (b"[]", "top level must be an object"),
    (json.dumps({"algorithm": "md5", "files": {"a": _digest("a")}}).encode(), "algorithm must be 'sha256'"),
    (json.dumps({"algorithm": "sha256", "files": {}}).encode(), "files must be a non-empty object"),
    (json.dumps({"algorithm": "sha256", "files": ["a"]}).encode(), "files must be a non-empty object"),
    (json.dumps({"algorithm": "sha256", "files": {"a": "x"}, "extra": 1}).encode(), "unknown keys ['extra']"),
    (json.dumps({"algorithm": "sha256", "files": {"/etc/passwd": _digest("a")}}).encode(), "'/etc/passwd'"),
    (json.dumps({"algorithm": "sha256", "files": {"a/../../b": _digest("a")}}).encode(), "'a/../../b'"),
    (json.dumps({"algorithm": "sha256", "files": {"a//b": _digest("a")}}).encode(), "'a//b'"),
    (json.dumps({"algorithm": "sha256", "files": {"model.sig": _digest("a")}}).encode(), "reserved"),
    (json.dumps({"algorithm": "sha256", "files": {"manifest.json": _digest("a")}}).encode(), "reserved"),
    (json.dumps({"algorithm": "sha256", "files": {"m.onnx": _digest("a").upper()}}).encode(),
     "files['m.onnx']"),
    (json.dumps({"algorithm": "sha256", "files": {"m.onnx": _digest("a")[:63]}}).encode(), "files['m.onnx']"),
    (json.dumps({"algorithm": "sha256", "files": {"m.onnx": 5}}).encode(), "files['m.onnx']"),
])
def test_parse_manifest_rejects_with_the_offending_field_named(raw, fragment):
    with pytest.raises(ManifestFormatError) as caught:
        parse_manifest(raw)
    assert fragment in str(caught.value)
    assert "manifest.json" in str(caught.value)


def test_manifest_bytes_refuses_an_empty_artifact_and_reserved_names():
    with pytest.raises(ManifestFormatError, match="at least one file"):
        manifest_bytes({})
    with pytest.raises(ManifestFormatError, match="reserved"):
        manifest_bytes({"model.sig": _digest("x")})


def test_compare_digests_reports_changed_then_missing_then_extra_each_sorted():
    listed = {"a": _digest("a"), "b": _digest("b"), "c": _digest("c"), "d": _digest("d")}
    found = {"a": _digest("a"), "b": _digest("tampered"), "d": _digest("d2"),
             "z": _digest("z"), "y": _digest("y")}
    result = compare_digests(listed, found)
    assert [(d.reason, d.path) for d in result] == [
        (VerificationReason.DIGEST_MISMATCH, "b"),
        (VerificationReason.DIGEST_MISMATCH, "d"),
        (VerificationReason.MISSING_FILE, "c"),
        (VerificationReason.UNEXPECTED_FILE, "y"),
        (VerificationReason.UNEXPECTED_FILE, "z"),
    ]
    assert _digest("tampered") in result[0].message and listed["b"] in result[0].message


def test_compare_digests_is_empty_only_for_identical_mappings():
    same = {"a": _digest("a"), "x/y": _digest("y")}
    assert compare_digests(same, dict(same)) == []
    assert compare_digests(same, {"a": _digest("a")}) != []
