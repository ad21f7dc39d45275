"""Elliptic-curve signing keys: making a pair for tests and development, and checking a private key.

Decides the key format Tugboat signs with (EC P-256; PKCS8 PEM private key, SubjectPublicKeyInfo PEM
public key, as OpenSSF model-signing expects) and refuses anything else with a message naming the
file. It must not store keys anywhere but the paths it is given: in a cluster the private key comes
from a Secret mounted by the operator's Job builder.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# The sign CLI's exit code when the mounted Secret lacks the key: the Job builder makes it fail
# the Job at once (a pod failure policy), and the operator reports the missing Secret key.
KEY_MISSING_EXIT = 3

# The curves model-signing can verify (its key-based verifier rejects the rest).
SUPPORTED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


class SigningKeyError(ValueError):
    """A key file is missing, unreadable or of the wrong kind; the message names the file."""


def generate_keypair(private_path: str | os.PathLike, public_path: str | os.PathLike) -> None:
    """Write a fresh EC P-256 key pair: PKCS8 PEM private key (mode 0600) and its PEM public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    # Create the private key with its final mode, so it is never world-readable even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    Path(public_path).write_bytes(public_pem)


def check_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load an unencrypted EC private key from PEM, or raise SigningKeyError naming `path`."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"private key {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"private key {path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningKeyError(f"private key {path} is a {type(key).__name__}, not an elliptic-curve key")
    if key.curve.name not in SUPPORTED_CURVES:
        raise SigningKeyError(f"private key {path} uses curve {key.curve.name}; "
                              f"supported: {', '.join(sorted(SUPPORTED_CURVES))}")
    return key
