"""Pure reconcile logic per kind: an observed snapshot in, next status + desired objects out.

Nothing in this package performs I/O or reads the clock; `controllers/` does both.
"""
