"""Is the platform's trusted public key usable at all? Pure.

A key that is empty or does not parse is the platform team's configuration error, to be fixed in
the trust ConfigMap: it must never read as an artifact's bad signature (final for the release).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import load_pem_public_key


def key_problem(pem: str | None) -> str | None:
    """Why the PEM cannot verify anything, or None when it is a public key (absence is the
    caller's NoTrustedKey, not a problem of the key)."""
    if pem is None:
        return None
    if not pem.strip():
        return "public.pem is empty"
    try:
        load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        return f"public.pem is not a PEM public key: {exc}"
    return None
