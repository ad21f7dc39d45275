"""Kopf wiring: handlers translate kopf's kwargs into calls of plain functions, nothing more.

Importing this module registers the handlers; `tugboat run` imports it and starts kopf.
"""

from __future__ import annotations

from . import budget_store, wiring  # noqa: F401  (registers handlers and the startup hook)
