"""The operator's own Prometheus metrics: reconcile counts, durations and errors; what its objects
look like (phase, rollout step and weight, training health); the analysis queries it ran.

Definitions only: the controllers set them from what a reconcile already read or decided
(controllers/metrics_record.py), never the pure layers, and never with an extra API read.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .analysis.results import ErrorKind
from .api.kinds import KINDS

RECONCILES = Counter("tugboat_reconcile_total", "Reconcile passes", ["kind", "result"])
ERRORS = Counter("tugboat_reconcile_errors_total", "Reconcile passes that raised", ["kind", "error"])
# Every request of our own client (kube/client.py); kopf's watches and peering are not in it. An
# idle operator sends none: a rate here while nothing changes names a poll (issue #12).
API_REQUESTS = Counter("tugboat_api_requests_total", "Requests the operator's client sent to the API server",
                       ["verb", "kind"])
APPLIES_SKIPPED = Counter("tugboat_applies_skipped_total",
                          "Server-side applies not sent: the cached object already is what we declare",
                          ["kind"])
EVENTS_DROPPED = Counter("tugboat_events_dropped_total",
                         "Events not posted: the event queue was full (the API server behind)")
# Set from the work queue (handlers/wiring.py): due is the backlog behind the workers; scheduled
# counts every pending wake-up, future ones (pauses, analysis intervals, back-offs) included.
QUEUE_DUE = Gauge("tugboat_work_queue_due", "Reconcile wake-ups due now, waiting for a worker")
QUEUE_SCHEDULED = Gauge("tugboat_work_queue_scheduled", "Pending reconcile wake-ups, due or not")
DURATION = Histogram("tugboat_reconcile_duration_seconds", "Reconcile pass duration", ["kind"],
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# Every label set a dashboard or alert divides by exists from the start at 0: a rate of a
# series that appears only with its first error would miss that error.
for _kind in KINDS:
    for _result in ("ok", "error"):
        RECONCILES.labels(_kind.kind, _result)

# Counted from the phases the operator last decided for the objects it reconciled.
OBJECTS = Gauge("tugboat_objects", "Objects per kind and phase (as last reconciled)", ["kind", "phase"])

# Rollouts: one label set per release and AgentDeployment it targets.
_TARGET = ["namespace", "release", "target_namespace", "target"]
ROLLOUT_STEPS = Counter("tugboat_rollout_steps_total", "Canary steps a target advanced", _TARGET)
ROLLBACKS = Counter("tugboat_rollbacks_total", "Targets rolled back", _TARGET)
CANARY_WEIGHT = Gauge("tugboat_canary_weight_percent", "Canary share of traffic of a target",
                      [*_TARGET, "tenant"])

# A target's last judged measurement per check, beside the threshold it was judged against.
ANALYSIS_VALUE = Gauge("tugboat_analysis_value", "Last measured value of a check", [*_TARGET, "check"])
ANALYSIS_THRESHOLD = Gauge("tugboat_analysis_threshold", "Threshold of a check", [*_TARGET, "check"])

ANALYSIS_QUERIES = Counter("tugboat_analysis_queries_total", "PromQL analysis queries sent to Prometheus")
ANALYSIS_ERRORS = Counter("tugboat_analysis_query_errors_total", "Analysis queries that failed", ["kind"])
for _error in ErrorKind:
    ANALYSIS_ERRORS.labels(_error.value)

# A TrainingRun's last metrics as its status reports them (from MLflow), so dashboards and alerts
# have the training series without reading MLflow.
_RUN = ["namespace", "training_run"]
TRAINING_LOSS = Gauge("tugboat_training_loss", "Last training loss", _RUN)
TRAINING_TOKENS = Gauge("tugboat_training_tokens_per_second", "Last training throughput", _RUN)
TRAINING_ENTROPY = Gauge("tugboat_training_router_entropy", "Last router entropy (nats)", _RUN)
TRAINING_IMBALANCE = Gauge("tugboat_training_expert_load_imbalance", "Last expert load max/mean", _RUN)
TRAINING_MIN_ENTROPY = Gauge("tugboat_training_router_entropy_min", "Router entropy SLO", _RUN)
TRAINING_MAX_IMBALANCE = Gauge("tugboat_training_expert_load_imbalance_max", "Imbalance SLO", _RUN)
