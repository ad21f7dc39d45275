"""Dataset URIs: deterministic builtin progressions, text files, the canonical checksum, and
the errors for mismatches and malformed input."""

import hashlib
import struct
import subprocess
import sys

import pytest

from tugboat_workloads.data import (
    DataChecksumError,
    DataError,
    dataset_sha256,
    load_tokens,
    load_verified_tokens,
    main,
)
from tugboat_workloads.task import expected_continuation

URI = "builtin://arithmetic?samples=64&seed=7"


def test_builtin_rows_are_progressions_mod_vocab():
    table = load_tokens(URI, vocab_size=64, seq_len=32)
    assert (table.rows, table.cols) == (64, 33)
    rows = table.to_lists()
    for row in rows:
        assert expected_continuation(row[:2], 31, 64) == row[2:]
    # start and stride vary between samples (a constant dataset would teach nothing)
    assert len({(row[0], (row[1] - row[0]) % 64) for row in rows}) > 50


def test_checksum_is_deterministic_across_processes_and_pinned():
    here = dataset_sha256(URI, 64, 32)
    code = f"from tugboat_workloads.data import dataset_sha256; print(dataset_sha256({URI!r}, 64, 32))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here
    # Golden value: the bytes must not drift between library versions or machines, since
    # TrainingRun specs pin this digest.
    assert dataset_sha256("builtin://arithmetic?samples=4&seed=0", 8, 4) == (
        "3081d201fd14ab62e791b72557c30baf20c81835a7decab357ff7626aec8fb00")


def test_checksum_is_sha256_of_the_documented_canonical_form():
    table = load_tokens(URI, 64, 32)
    ids = [token for row in table.to_lists() for token in row]
    canonical = b"tugboat-tokens/v1 rows=64 cols=33\n" + struct.pack(f"<{len(ids)}q", *ids)
    assert table.sha256() == hashlib.sha256(canonical).hexdigest()


def test_checksum_depends_on_seed_samples_vocab_and_length():
    digests = {
        dataset_sha256(URI, 64, 32),
        dataset_sha256("builtin://arithmetic?samples=64&seed=8", 64, 32),
        dataset_sha256("builtin://arithmetic?samples=65&seed=7", 64, 32),
        dataset_sha256(URI, 32, 32),
        dataset_sha256(URI, 64, 16),
    }
    assert len(digests) == 5


def test_mismatch_names_both_digests():
    actual = dataset_sha256(URI, 64, 32)
    wrong = "0" * 64
    with pytest.raises(DataChecksumError) as info:
        load_verified_tokens(URI, 64, 32, wrong)
    assert wrong in str(info.value) and actual in str(info.value)
    assert load_verified_tokens(URI, 64, 32, actual.upper()).sha256() == actual


def test_text_file_with_the_same_ids_has_the_same_digest(tmp_path):
    rows = load_tokens("builtin://arithmetic?samples=5&seed=1", 16, 6).to_lists()
    path = tmp_path / "tokens.txt"
    path.write_text("\n".join("  ".join(map(str, row)) for row in rows) + "\n\n")
    builtin = dataset_sha256("builtin://arithmetic?samples=5&seed=1", 16, 6)
    assert dataset_sha256(f"file://{path}", 16, 6) == builtin


@pytest.mark.parametrize(
    "content, match",
    [("1 2 3\n", r"tokens.txt:1: expected 4"), ("1 2 3 4\n1 2 x 4\n", r"tokens.txt:2: token ids must be"),
     ("1 2 3 99\n", r"tokens.txt:1: token id 99"), ("\n\n", "no samples")],
)
def test_malformed_text_files_name_file_and_line(tmp_path, content, match):
    path = tmp_path / "tokens.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        load_tokens(f"file://{path}", 16, 3)


@pytest.mark.parametrize(
    "uri, match",
    [("s3://bucket/x", "unsupported scheme"), ("builtin://fibonacci", "unknown builtin"),
     ("builtin://arithmetic?sample=3", "unknown parameter 'sample'"),
     ("builtin://arithmetic?samples=abc", "samples='abc'"),
     ("builtin://arithmetic?samples=0", "samples must be"),
     ("builtin://[", "not a valid URI"), ("file://relative/path.txt", "absolute path"),
     ("file:///nonexistent/t.txt", "cannot read")],
)
def test_bad_uris_are_rejected_with_the_uri(uri, match):
    with pytest.raises(DataError, match=match):
        load_tokens(uri, 64, 32)


def test_cli_prints_the_digest(capsys):
    assert main(["checksum", URI, "--vocab", "64", "--seq-len", "32"]) == 0
    assert capsys.readouterr().out.strip() == dataset_sha256(URI, 64, 32)
    assert main(["checksum", "s3://x"]) == 2
    assert "unsupported scheme" in capsys.readouterr().err


def test_a_file_dataset_is_read_only_under_an_allowed_root(tmp_path):
    root, outside = tmp_path / "datasets", tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    (root / "t.txt").write_text("1 2 3 4\n")
    (outside / "t.txt").write_text("5 6 7 8\n")
    (root / "link.txt").symlink_to(outside / "t.txt")  # the operator cannot see this one
    assert load_tokens(f"file://{root}/t.txt", 16, 3, allowed_roots=[str(root)]).to_lists() == [[1, 2, 3, 4]]
    for uri in (f"file://{root}/link.txt", f"file://{root}/../secret/t.txt", f"file://{outside}/t.txt"):
        with pytest.raises(DataError, match=f"outside the allowed dataset roots \\({root}/\\)"):
            load_verified_tokens(uri, 16, 3, None, allowed_roots=[str(root)])
    with pytest.raises(DataError, match="none configured"):
        load_tokens(f"file://{root}/t.txt", 16, 3, allowed_roots=())
