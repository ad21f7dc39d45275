"""The operator's own Prometheus metrics (reconcile counts, durations, errors)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter("tugboat_reconcile_total", "Reconcile passes", ["kind", "result"])
ERRORS = Counter("tugboat_reconcile_errors_total", "Reconcile passes that raised", ["kind", "error"])
DURATION = Histogram("tugboat_reconcile_duration_seconds", "Reconcile pass duration", ["kind"],
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
