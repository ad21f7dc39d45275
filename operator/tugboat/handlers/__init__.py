"""Kopf wiring: handlers translate kopf's kwargs (and our informers' changes) into calls of plain
functions, nothing more.

Importing this module registers the kopf handlers; `tugboat run` imports it, subscribes the
informer handlers (wiring.subscribe) and starts kopf.
"""

from __future__ import annotations

from . import budget_store, wiring  # noqa: F401  (registers handlers and the startup hook)
