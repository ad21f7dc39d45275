"""Typed errors of the API server, so callers branch on meaning, not on HTTP codes."""

from __future__ import annotations


class KubeError(Exception):
    """Any failed call to the API server."""


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    """422: the object was rejected by schema, CEL or admission."""


class Forbidden(KubeError):
    pass


class Transient(KubeError):
    """Worth retrying: timeouts, 429, 5xx, connection errors."""


def from_status(code: int | None, message: str) -> KubeError:
    cls = {404: NotFound, 409: Conflict, 422: Invalid, 403: Forbidden}.get(code or 0)
    if cls is None:
        cls = Transient if code is None or code == 429 or code >= 500 else KubeError
    return cls(message)
