"""TrainingRun: a Ray Train Mixture-of-Experts job on a GPU node pool, tracked in MLflow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .base import DNS_LABEL, QUANTITY, SHA256_HEX, Name, Rule, StatusBase, WireModel


class MoEModelSpec(WireModel):
    """Architecture of the MoE transformer. Defaults: a tiny model that trains on 2 CPU cores."""

    RULES = (
        Rule("self.topK <= self.experts", "topK must not exceed experts",
             lambda m: m.top_k <= m.experts, ".topK"),
        Rule("self.dModel % self.heads == 0", "dModel must be divisible by heads",
             lambda m: m.d_model % m.heads == 0, ".heads"),
    )

    layers: int = Field(default=2, ge=1, le=128, description="Transformer layers; default 2")
    d_model: int = Field(default=128, ge=8, le=16384, description="Hidden size, a multiple of "
                         "heads; default 128")
    heads: int = Field(default=4, ge=1, le=256, description="Attention heads; default 4")
    experts: int = Field(default=8, ge=1, le=1024, description="Experts per MoE layer; default 8")
    top_k: int = Field(default=2, ge=1, le=16, description="Experts each token is routed to, at "
                       "most experts; default 2")
    d_ff: int = Field(default=256, ge=8, le=65536, alias="dFF", description="Hidden size of each "
                      "expert's feed-forward network; default 256")
    capacity_factor: float = Field(default=1.25, ge=1.0, le=16.0, description="Expert capacity as "
                                   "a multiple of an even share of tokens; overflow is dropped; "
                                   "default 1.25")
    aux_loss_coef: float = Field(default=0.01, ge=0.0, le=10.0, description="Weight of the "
                                 "load-balancing auxiliary loss; default 0.01")
    router_z_loss_coef: float = Field(default=0.001, ge=0.0, le=10.0, description="Weight of the "
                                      "router z-loss; default 0.001")
    gate_temperature: float = Field(default=1.0, gt=0.0, le=100.0, description="Softmax "
                                    "temperature of the router gate; default 1.0")
    vocab_size: int = Field(default=64, ge=2, le=1_000_000, description="Vocabulary size in "
                            "tokens; default 64")
    seq_len: int = Field(default=32, ge=2, le=131072, description="Sequence length in tokens; "
                         "default 32")


class DataSpec(WireModel):
    """The training dataset, checked against its digest before training."""

    uri: str = Field(
        min_length=1, max_length=2048, pattern=r"^(builtin|file|s3|gs|https?)://.+",
        description="builtin://arithmetic?samples=N&seed=S, file:///path, or an object-store URI",
    )
    sha256: str = Field(pattern=SHA256_HEX, description="Expected SHA-256 of the dataset bytes")


class Precision(StrEnum):
    """What the training workload can train in. No fp16: it would need loss scaling, and CPU
    autocast to fp16 is too slow to train with (bf16 has fp32's range and runs on CPU and GPU)."""

    FP32 = "fp32"
    BF16 = "bf16"


class TrainingSpec(WireModel):
    """The optimisation loop."""

    RULES = (
        Rule("self.checkpointInterval <= self.steps", "checkpointInterval must not exceed steps",
             lambda t: t.checkpoint_interval <= t.steps, ".checkpointInterval"),
    )

    steps: int = Field(default=200, ge=1, le=100_000_000, description="Optimizer steps; default 200")
    batch_size: int = Field(default=16, ge=1, le=65536, description="Global batch in sequences, "
                            "divisible by resources.workers; default 16")
    learning_rate: float = Field(default=3e-3, gt=0.0, le=10.0, description="Learning rate; "
                                 "default 0.003")
    precision: Precision = Field(default=Precision.FP32, description="fp32 (default) or bf16")
    checkpoint_interval: int = Field(default=50, ge=1, description="Steps between checkpoints, at "
                                     "most steps; default 50")
    seed: int = Field(default=0, ge=0, description="Random seed; default 0")


class ResourcesSpec(WireModel):
    """The Ray cluster the run trains on."""

    workers: int = Field(default=2, ge=1, le=4096, description="Ray Train workers; default 2")
    gpus_per_worker: int = Field(default=1, ge=0, le=16, description="GPUs per worker; default 1")
    cpus_per_worker: int = Field(default=1, ge=1, le=256, description="CPUs per worker; default 1")
    memory_per_worker: str = Field(default="4Gi", pattern=QUANTITY, description="Memory per "
                                   "worker, Kubernetes quantity; default 4Gi")
    node_pool: str = Field(default="gpu", max_length=63, pattern=DNS_LABEL, description="Node pool "
                           "of the workers; the Tenant must allow it; default gpu")


class GuardAction(StrEnum):
    TEMPERATURE_BUMP = "TemperatureBump"
    NOISE_INJECTION = "NoiseInjection"
    BOTH = "Both"
    NONE = "None"


class RouterHealthSpec(WireModel):
    """Router-health SLOs; defaults from the field (Switch/GShard practice)."""

    max_imbalance: float = Field(default=1.6, gt=1.0, le=100.0,
                                 description="Max expert load / mean expert load (ratio); "
                                             "default 1.6")
    min_entropy: float = Field(default=1.1, ge=0.0, le=20.0,
                               description="Minimum mean router entropy (nats); default 1.1")
    action: GuardAction = Field(default=GuardAction.TEMPERATURE_BUMP, description="What the "
                                "trainer does on a breach: TemperatureBump (default), "
                                "NoiseInjection, Both or None")


class MlflowSpec(WireModel):
    """MLflow tracking of the run."""

    experiment: str = Field(default="tugboat", min_length=1, max_length=256,
                            description="MLflow experiment; default tugboat")


class RetrySpec(WireModel):
    """Retries of failed attempts, resuming from the last checkpoint."""

    max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts in all; default 3")
    backoff_seconds: int = Field(default=30, ge=0, le=86400, description="Seconds before the "
                                 "first retry, doubling each attempt; default 30")


class TrainingRunSpec(WireModel):
    RULES = (
        # The global batch is split evenly across the workers (the training workload refuses others).
        Rule("self.training.batchSize % self.resources.workers == 0",
             "training.batchSize must be divisible by resources.workers",
             lambda s: s.training.batch_size % s.resources.workers == 0, ".training.batchSize"),
    )

    model: MoEModelSpec = Field(default_factory=MoEModelSpec, description="Model architecture")
    data: DataSpec = Field(description="Training dataset")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Optimisation loop")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Ray workers")
    router_health: RouterHealthSpec = Field(default_factory=RouterHealthSpec,
                                            description="Router-health SLOs and guard")
    tenant: Name | None = Field(default=None, description="Tenant holding this namespace, whose "
                                "node pools apply; default none")
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec, description="MLflow tracking")
    retry: RetrySpec = Field(default_factory=RetrySpec, description="Retries of failed attempts")
    suspend: bool = Field(default=False, description="Stop the run; false resumes from the last "
                          "checkpoint; default false")


class TrainingMetrics(WireModel):
    """Latest training metrics the run reported."""

    model_config = {"extra": "ignore"}

    loss: float | None = Field(default=None, description="Training loss")
    tokens_per_second: float | None = Field(default=None, description="Throughput, tokens per second")
    expert_load_imbalance: float | None = Field(default=None, description="Max expert load / mean "
                                                "expert load (ratio)")
    router_entropy: float | None = Field(default=None, description="Mean router entropy (nats)")
    dropped_fraction: float | None = Field(default=None, description="Share of tokens dropped "
                                           "over expert capacity (fraction 0-1)")


class TrainingRunStatus(StatusBase):
    attempt: int | None = Field(default=None, description="Current attempt, from 1")
    ray_job_name: str | None = Field(default=None, description="RayJob of the current attempt")
    mlflow_run_id: str | None = Field(default=None, description="MLflow run id")
    checkpoint: str | None = Field(default=None, description="URI of the latest checkpoint")
    step: int | None = Field(default=None, description="Latest step reported")
    metrics: TrainingMetrics | None = Field(default=None, description="Latest metrics")
    start_time: datetime | None = Field(default=None, description="When the first attempt started")
    completion_time: datetime | None = Field(default=None, description="When the run finished")
    next_retry_time: datetime | None = Field(default=None, description="When the next attempt starts")


PRINTER_COLUMNS = [
    {"name": "Step", "type": "integer", "jsonPath": ".status.step"},
    {"name": "Loss", "type": "number", "jsonPath": ".status.metrics.loss"},
    {"name": "Imbalance", "type": "number", "jsonPath": ".status.metrics.expertLoadImbalance"},
    {"name": "Pool", "type": "string", "jsonPath": ".spec.resources.nodePool", "priority": 1},
]
