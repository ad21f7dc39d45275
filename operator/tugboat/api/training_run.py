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

    layers: int = Field(default=2, ge=1, le=128)
    d_model: int = Field(default=128, ge=8, le=16384)
    heads: int = Field(default=4, ge=1, le=256)
    experts: int = Field(default=8, ge=1, le=1024)
    top_k: int = Field(default=2, ge=1, le=16)
    d_ff: int = Field(default=256, ge=8, le=65536, alias="dFF")
    capacity_factor: float = Field(default=1.25, ge=1.0, le=16.0)
    aux_loss_coef: float = Field(default=0.01, ge=0.0, le=10.0)
    router_z_loss_coef: float = Field(default=0.001, ge=0.0, le=10.0)
    gate_temperature: float = Field(default=1.0, gt=0.0, le=100.0)
    vocab_size: int = Field(default=64, ge=2, le=1_000_000)
    seq_len: int = Field(default=32, ge=2, le=131072)


class DataSpec(WireModel):
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
    RULES = (
        Rule("self.checkpointInterval <= self.steps", "checkpointInterval must not exceed steps",
             lambda t: t.checkpoint_interval <= t.steps, ".checkpointInterval"),
    )

    steps: int = Field(default=200, ge=1, le=100_000_000)
    batch_size: int = Field(default=16, ge=1, le=65536)
    learning_rate: float = Field(default=3e-3, gt=0.0, le=10.0)
    precision: Precision = Precision.FP32
    checkpoint_interval: int = Field(default=50, ge=1)
    seed: int = Field(default=0, ge=0)


class ResourcesSpec(WireModel):
    workers: int = Field(default=2, ge=1, le=4096)
    gpus_per_worker: int = Field(default=1, ge=0, le=16)
    cpus_per_worker: int = Field(default=1, ge=1, le=256)
    memory_per_worker: str = Field(default="4Gi", pattern=QUANTITY)
    node_pool: str = Field(default="gpu", max_length=63, pattern=DNS_LABEL)


class GuardAction(StrEnum):
    TEMPERATURE_BUMP = "TemperatureBump"
    NOISE_INJECTION = "NoiseInjection"
    BOTH = "Both"
    NONE = "None"


class RouterHealthSpec(WireModel):
    """Router-health SLOs; defaults from the field (Switch/GShard practice)."""

    max_imbalance: float = Field(default=1.6, gt=1.0, le=100.0,
                                 description="Max expert load / mean expert load")
    min_entropy: float = Field(default=1.1, ge=0.0, le=20.0,
                               description="Minimum mean router entropy (nats)")
    action: GuardAction = GuardAction.TEMPERATURE_BUMP


class MlflowSpec(WireModel):
    experiment: str = Field(default="tugboat", min_length=1, max_length=256)


class RetrySpec(WireModel):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff_seconds: int = Field(default=30, ge=0, le=86400)


class TrainingRunSpec(WireModel):
    RULES = (
        # The global batch is split evenly across the workers (the training workload refuses others).
        Rule("self.training.batchSize % self.resources.workers == 0",
             "training.batchSize must be divisible by resources.workers",
             lambda s: s.training.batch_size % s.resources.workers == 0, ".training.batchSize"),
    )

    model: MoEModelSpec = Field(default_factory=MoEModelSpec)
    data: DataSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    router_health: RouterHealthSpec = Field(default_factory=RouterHealthSpec)
    tenant: Name | None = None
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    suspend: bool = False


class TrainingMetrics(WireModel):
    model_config = {"extra": "ignore"}

    loss: float | None = None
    tokens_per_second: float | None = None
    expert_load_imbalance: float | None = None
    router_entropy: float | None = None
    dropped_fraction: float | None = None


class TrainingRunStatus(StatusBase):
    attempt: int | None = None
    ray_job_name: str | None = None
    mlflow_run_id: str | None = None
    checkpoint: str | None = None
    step: int | None = None
    metrics: TrainingMetrics | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    next_retry_time: datetime | None = None


PRINTER_COLUMNS = [
    {"name": "Step", "type": "integer", "jsonPath": ".status.step"},
    {"name": "Loss", "type": "number", "jsonPath": ".status.metrics.loss"},
    {"name": "Imbalance", "type": "number", "jsonPath": ".status.metrics.expertLoadImbalance"},
    {"name": "Pool", "type": "string", "jsonPath": ".spec.resources.nodePool", "priority": 1},
]
