"""Training data: dataset URIs, their deterministic token tables, and the checksum that pins them.

URIs:
  builtin://arithmetic?samples=N&seed=S   N arithmetic progressions mod vocabSize; start and
                                          stride come from SHA-256 of (seed, index), so the bytes
                                          are the same on every machine and library version.
  file:///abs/path/tokens.txt             one sample per non-empty line: exactly seqLen+1
                                          space-separated token ids in [0, vocabSize). Training
                                          reads it only if its real path (symlinks resolved) lies
                                          under one of the roots the operator allows.
A sample is seqLen+1 tokens: the model reads the first seqLen and predicts the last seqLen.

The checksum is SHA-256 over the canonical table: the ASCII header
"tugboat-tokens/v1 rows=R cols=C\\n" followed by the ids as little-endian int64, row-major.
It pins what the model trains on, whatever file formatting produced it.

Decides URI syntax, generation and the digest. Must not import torch (the CLI computes digests
for specs on machines without it) and must never pass a mismatching dataset silently.

CLI: python -m tugboat_workloads.data checksum URI [--vocab 64] [--seq-len 32]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

BUILTIN_DEFAULT_SAMPLES = 4096
MAX_BUILTIN_SAMPLES = 1_000_000


class DataError(ValueError):
    """A dataset URI or file is malformed; the message names the URI, file or line."""


class DataChecksumError(Exception):
    """The dataset's digest differs from the one the spec pinned."""

    def __init__(self, uri: str, expected: str, actual: str):
        super().__init__(f"dataset {uri}: sha256 mismatch: expected {expected}, got {actual}")
        self.uri, self.expected, self.actual = uri, expected, actual


@dataclass(frozen=True)
class TokenTable:
    """rows x cols token ids, stored canonically (little-endian int64, row-major)."""

    rows: int
    cols: int
    data: bytes

    def sha256(self) -> str:
        digest = hashlib.sha256(f"tugboat-tokens/v1 rows={self.rows} cols={self.cols}\n".encode())
        digest.update(self.data)
        return digest.hexdigest()

    def to_lists(self) -> list[list[int]]:
        ids = array("q")
        ids.frombytes(self.data)
        if sys.byteorder == "big":
            ids.byteswap()
        return [ids[r * self.cols:(r + 1) * self.cols].tolist() for r in range(self.rows)]


def load_tokens(uri: str, vocab_size: int, seq_len: int,
                allowed_roots: Sequence[str] | None = None) -> TokenTable:
    """The token table a URI denotes for this vocabulary and sequence length; a file:// URI only
    under `allowed_roots` when given (the CLI's own checksums on a user's machine pass None)."""
    if vocab_size < 2 or seq_len < 1:
        raise DataError(f"vocab_size must be >= 2 and seq_len >= 1, got {vocab_size}, {seq_len}")
    try:
        parts = urlsplit(uri)
    except ValueError as err:
        raise DataError(f"dataset {uri}: not a valid URI ({err})") from err
    if parts.scheme == "builtin":
        return _builtin(uri, parts.netloc, parts.query, vocab_size, seq_len)
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise DataError(f"dataset {uri}: file URIs need an absolute path (file:///abs/path.txt)")
        path = Path(unquote(parts.path))
        if allowed_roots is not None:
            path = _confined(uri, path, allowed_roots)
        return _from_text_file(path, vocab_size, seq_len)
    raise DataError(f"dataset {uri}: unsupported scheme {parts.scheme!r} (use builtin:// or file://)")


def _confined(uri: str, path: Path, roots: Sequence[str]) -> Path:
    real = path.resolve()
    if not any(real.is_relative_to(Path(root).resolve()) for root in roots):
        allowed = ", ".join(f"{root.rstrip('/')}/" for root in roots) or "none configured"
        raise DataError(f"dataset {uri}: {real} is outside the allowed dataset roots ({allowed})")
    return real


def dataset_sha256(uri: str, vocab_size: int, seq_len: int) -> str:
    return load_tokens(uri, vocab_size, seq_len).sha256()


def load_verified_tokens(uri: str, vocab_size: int, seq_len: int, expected_sha256: str | None,
                         allowed_roots: Sequence[str] | None = None) -> TokenTable:
    """load_tokens, then DataChecksumError unless the digest equals expected_sha256 (if given)."""
    table = load_tokens(uri, vocab_size, seq_len, allowed_roots)
    actual = table.sha256()
    if expected_sha256 is not None and expected_sha256.strip().lower() != actual:
        raise DataChecksumError(uri, expected_sha256, actual)
    return table


def _builtin(uri: str, name: str, query: str, vocab_size: int, seq_len: int) -> TokenTable:
    if name != "arithmetic":
        raise DataError(f"dataset {uri}: unknown builtin dataset {name!r} (known: arithmetic)")
    params = _int_params(uri, query, {"samples": BUILTIN_DEFAULT_SAMPLES, "seed": 0})
    samples, seed = params["samples"], params["seed"]
    if not 1 <= samples <= MAX_BUILTIN_SAMPLES:
        raise DataError(f"dataset {uri}: samples must be in [1, {MAX_BUILTIN_SAMPLES}], got {samples}")
    ids = array("q")
    for index in range(samples):
        start, stride = _progression(seed, index, vocab_size)
        ids.extend((start + stride * position) % vocab_size for position in range(seq_len + 1))
    return _table(ids, samples, seq_len + 1)


def _progression(seed: int, index: int, vocab_size: int) -> tuple[int, int]:
    # A hash, not a PRNG: the dataset's bytes must not depend on numpy's or Python's generators.
    digest = hashlib.sha256(f"tugboat/arithmetic/{seed}/{index}".encode()).digest()
    start = int.from_bytes(digest[:8], "little") % vocab_size
    stride = 1 + int.from_bytes(digest[8:16], "little") % (vocab_size - 1)
    return start, stride


def _int_params(uri: str, query: str, defaults: dict[str, int]) -> dict[str, int]:
    params = dict(defaults)
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in defaults:
            raise DataError(f"dataset {uri}: unknown parameter {key!r} (allowed: {', '.join(defaults)})")
        try:
            params[key] = int(value, 10)
        except ValueError:
            raise DataError(f"dataset {uri}: parameter {key}={value!r} is not an integer") from None
    return params


def _from_text_file(path: Path, vocab_size: int, seq_len: int) -> TokenTable:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"dataset file {path}: cannot read ({exc.strerror or exc})") from None
    ids, rows = array("q"), 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        ids.extend(_parse_row(path, number, line, vocab_size, seq_len + 1))
        rows += 1
    if rows == 0:
        raise DataError(f"dataset file {path}: no samples")
    return _table(ids, rows, seq_len + 1)


def _parse_row(path: Path, number: int, line: str, vocab_size: int, cols: int) -> list[int]:
    words = line.split()
    if len(words) != cols:
        raise DataError(f"{path}:{number}: expected {cols} token ids (seqLen+1), got {len(words)}")
    try:
        row = [int(word, 10) for word in words]
    except ValueError:
        raise DataError(f"{path}:{number}: token ids must be integers") from None
    bad = [token for token in row if not 0 <= token < vocab_size]
    if bad:
        raise DataError(f"{path}:{number}: token id {bad[0]} outside [0, {vocab_size})")
    return row


def _table(ids: array, rows: int, cols: int) -> TokenTable:
    if sys.byteorder == "big":
        ids.byteswap()
    return TokenTable(rows=rows, cols=cols, data=ids.tobytes())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tugboat_workloads.data")
    commands = parser.add_subparsers(dest="command", required=True)
    checksum = commands.add_parser("checksum", help="print the dataset's sha256")
    checksum.add_argument("uri")
    checksum.add_argument("--vocab", type=int, default=64)
    checksum.add_argument("--seq-len", type=int, default=32)
    args = parser.parse_args(argv)
    try:
        print(dataset_sha256(args.uri, args.vocab, args.seq_len))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
