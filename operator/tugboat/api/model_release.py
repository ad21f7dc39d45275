"""ModelRelease: checkpoint -> export -> sign -> verify -> register -> phased canary."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import DNS_LABEL, DURATION, SHA256_HEX, Name, Rule, SecretKeyRef, StatusBase, WireModel


class ReleaseSource(WireModel):
    RULES = (
        Rule("has(self.trainingRun) != has(self.modelUri)", "set exactly one of trainingRun or modelUri",
             lambda s: (s.training_run is None) != (s.model_uri is None)),
        Rule("!has(self.modelUri) || has(self.digest)",
             "modelUri requires digest (sha256 of the model files)",
             lambda s: s.model_uri is None or s.digest is not None, ".digest"),
    )

    training_run: Name | None = Field(default=None, description="TrainingRun in this namespace")
    model_uri: str | None = Field(default=None, max_length=2048, pattern=r"^(file|s3|gs|https?|models)://.+")
    digest: str | None = Field(default=None, pattern=SHA256_HEX)


class ExportTarget(StrEnum):
    ONNX = "onnx"
    TENSORRT = "tensorrt"


class Variant(StrEnum):
    FP16 = "fp16"
    INT8 = "int8"


class ExportSpec(WireModel):
    targets: list[ExportTarget] = Field(default_factory=lambda: [ExportTarget.ONNX], min_length=1,
                                        json_schema_extra={"x-kubernetes-list-type": "set"})
    opset: int = Field(default=18, ge=13, le=23)
    tolerance: float = Field(default=1e-4, gt=0.0, le=1.0,
                             description="Max absolute ONNX-vs-torch error for fp32")
    variants: list[Variant] = Field(default_factory=list,
                                    json_schema_extra={"x-kubernetes-list-type": "set"})
    min_top1_agreement: float = Field(
        default=0.97, gt=0.0, le=1.0,
        description="Share of top-1 choices each variant must share with torch, on held-out inputs and "
                    "on the numerics probe, to be published in the artifact; serving nodes re-check "
                    "the probe on their own CPU. A variant below it is left out, the release does not fail")
    tensorrt_precision: str = Field(default="fp16", pattern=r"^(fp32|fp16|int8)$")
    node_pool: str = Field(default="cpu", pattern=DNS_LABEL, max_length=63,
                           description="Pool of the ONNX export Job")
    gpu_node_pool: str = Field(default="gpu", pattern=DNS_LABEL, max_length=63,
                               description="Pool of the TensorRT engine build Job")


class SigningMethod(StrEnum):
    KEY = "Key"
    SIGSTORE_KEYLESS = "SigstoreKeyless"


class SigningSpec(WireModel):
    RULES = (
        Rule("self.method != 'Key' || has(self.keySecretRef)", "method Key requires keySecretRef",
             lambda s: s.method != SigningMethod.KEY or s.key_secret_ref is not None, ".keySecretRef"),
    )

    method: SigningMethod = SigningMethod.KEY
    key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding the PKCS8 EC private key")


class RegistrySpec(WireModel):
    model_name: str | None = Field(default=None, max_length=256,
                                   description="MLflow registered model; defaults to modelLine")
    alias: str = Field(default="production", pattern=r"^[a-z][a-z0-9_-]*$", max_length=63)


class CanaryStep(WireModel):
    weight: int = Field(ge=0, le=100)
    pause: str = Field(default="30s", pattern=DURATION)
    analysis: bool = True


class AnalysisMetric(StrEnum):
    ERROR_RATE = "ErrorRate"
    LATENCY_P95 = "LatencyP95"
    SUCCESS_SCORE = "SuccessScore"
    ROUTER_HEALTH = "RouterHealth"


class AnalysisCheck(WireModel):
    metric: AnalysisMetric
    threshold: float
    query: str | None = Field(default=None, max_length=4096, description="PromQL override")


class AnalysisSpec(WireModel):
    interval: str = Field(default="15s", pattern=DURATION)
    failure_limit: int = Field(default=1, ge=0, le=100)
    inconclusive_limit: int = Field(default=3, ge=0, le=100)
    checks: list[AnalysisCheck] = Field(default_factory=lambda: [
        AnalysisCheck(metric=AnalysisMetric.ERROR_RATE, threshold=0.05),
        AnalysisCheck(metric=AnalysisMetric.LATENCY_P95, threshold=0.5),
        AnalysisCheck(metric=AnalysisMetric.SUCCESS_SCORE, threshold=0.8),
        AnalysisCheck(metric=AnalysisMetric.ROUTER_HEALTH, threshold=1.6),
    ])


class RolloutSpec(WireModel):
    steps: list[CanaryStep] = Field(default_factory=lambda: [
        CanaryStep(weight=10), CanaryStep(weight=50), CanaryStep(weight=100, pause="0s"),
    ], min_length=1, max_length=20)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    http_route: Name | None = Field(default=None, description="Gateway API HTTPRoute to weight; "
                                    "without it traffic moves by replica ratio")


class ModelReleaseSpec(WireModel):
    model_line: Name = Field(description="Model line this release belongs to (what tenants allow)")
    source: ReleaseSource
    export: ExportSpec = Field(default_factory=ExportSpec)
    signing: SigningSpec = Field(default_factory=lambda: SigningSpec(
        key_secret_ref=SecretKeyRef(name="tugboat-signing-key")))
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)


class GraphReport(WireModel):
    """One graph of the export: its numbers against torch, and whether it was published."""

    name: str
    file: str
    published: bool
    top1_agreement: float | None = None
    probe_top1_agreement: float | None = None
    max_abs_error: float | None = None
    reason: str | None = None


class ModelReleaseStatus(StatusBase):
    artifact_uri: str | None = None
    graphs: list[GraphReport] | None = Field(default=None, description="Graphs of the verified artifact "
                                             "from its signed export report")
    manifest_digest: str | None = None
    registry_version: str | None = None
    export_job: str | None = None
    canary_step: int | None = None
    canary_weight: int | None = None


PRINTER_COLUMNS = [
    {"name": "Line", "type": "string", "jsonPath": ".spec.modelLine"},
    {"name": "Version", "type": "string", "jsonPath": ".status.registryVersion"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.canaryStep"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
    {"name": "Digest", "type": "string", "jsonPath": ".status.manifestDigest", "priority": 1},
]
