"""ModelRelease: checkpoint -> export -> sign -> verify -> register -> phased canary."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field, field_validator

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


class TensorRTPrecision(StrEnum):
    """No int8: a TensorRT int8 engine needs calibration data the export does not have."""

    FP16 = "fp16"
    FP32 = "fp32"


class ExportSpec(WireModel):
    targets: list[ExportTarget] = Field(default_factory=lambda: [ExportTarget.ONNX], min_length=1,
                                        json_schema_extra={"x-kubernetes-list-type": "set"})
    # The dynamo ONNX exporter emits opset 18 and later.
    opset: int = Field(default=18, ge=18, le=23)
    tolerance: float = Field(default=1e-4, gt=0.0, le=1.0,
                             description="Max absolute ONNX-vs-torch error for fp32")
    variants: list[Variant] = Field(default_factory=list,
                                    json_schema_extra={"x-kubernetes-list-type": "set"})
    min_top1_agreement: float = Field(
        default=0.97, gt=0.0, le=1.0,
        description="Share of top-1 choices each variant must share with torch, on held-out inputs and "
                    "on the numerics probe, to be published in the artifact; serving nodes re-check "
                    "the probe on their own CPU. A variant below it is left out, the release does not fail")
    tensorrt_precision: TensorRTPrecision = TensorRTPrecision.FP16
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


class Pause(WireModel):
    """Wait at a step: for `duration`, or, without one, until a person promotes."""

    duration: str | None = Field(default=None, pattern=DURATION,
                                 description="e.g. 30s, 5m; absent: until `kubectl tugboat promote`")


class CanaryStep(WireModel):
    """Argo Rollouts style: set the canary weight, then wait for the pause and the step analysis."""

    # Steps run in order; none is ever repeated or skipped (rollout/steps.py).

    weight: int = Field(ge=0, le=100, description="Canary share of traffic in percent; capped by "
                        "each Tenant's spec.rollout.maxCanaryWeight")
    pause: Pause | None = Field(default=None, description="Wait at this weight; absent: no pause")
    analysis: bool = Field(default=True, description="The step ends only after every check has "
                           "passed `count` measurements at this weight")


class AnalysisMetric(StrEnum):
    ERROR_RATE = "ErrorRate"
    LATENCY_P95 = "LatencyP95"
    LATENCY_PER_TOKEN = "LatencyPerToken"
    SUCCESS_SCORE = "SuccessScore"
    ROUTER_IMBALANCE = "RouterImbalance"
    ROUTER_ENTROPY = "RouterEntropy"
    CUSTOM = "Custom"


class Direction(StrEnum):
    """Which side of the threshold passes."""

    AT_MOST = "AtMost"  # value <= threshold: rates, latencies, imbalance
    AT_LEAST = "AtLeast"  # value >= threshold: scores, entropy


# Higher is better only for the success score and the router's entropy.
NATURAL_DIRECTION = {m: Direction.AT_MOST for m in AnalysisMetric} | {
    AnalysisMetric.SUCCESS_SCORE: Direction.AT_LEAST, AnalysisMetric.ROUTER_ENTROPY: Direction.AT_LEAST}


class AnalysisCheck(WireModel):
    """A PromQL measurement of each target's canary every `interval`, over the last `window`."""

    RULES = (
        Rule("self.metric != 'Custom' || has(self.query)", "metric Custom requires query",
             lambda c: c.metric != AnalysisMetric.CUSTOM or c.query is not None, ".query"),
        Rule("self.metric != 'Custom' || has(self.direction)", "metric Custom requires direction",
             lambda c: c.metric != AnalysisMetric.CUSTOM or c.direction is not None, ".direction"),
    )

    name: Name
    metric: AnalysisMetric
    threshold: float
    direction: Direction | None = Field(
        default=None, description="AtMost: passes when value <= threshold; AtLeast: when value >= "
        "threshold. Default: AtLeast for SuccessScore and RouterEntropy, AtMost otherwise")
    max_regression: float | None = Field(
        default=None, ge=0.0, description="Also fail when the canary is worse than the stable track "
        "over the same window by more than this (absolute, in the metric's unit)")
    query: str | None = Field(
        default=None, max_length=4096, description="PromQL (required for Custom, replaces a built-in's "
        "query otherwise); $release, $track, $tenant, $namespace, $agentDeployment and $window are "
        "substituted per target and track")
    window: str = Field(default="1m", pattern=DURATION, description="Range each measurement covers")
    interval: str = Field(default="15s", pattern=DURATION, description="Time between measurements")
    count: int = Field(default=3, ge=1, le=100,
                       description="Passing measurements each step with analysis needs")
    failure_limit: int = Field(default=0, ge=0, le=100,
                               description="Failed measurements tolerated in a rollout; one more rolls back")
    inconclusive_limit: int = Field(default=3, ge=0, le=100, description="Consecutive inconclusive "
                                    "measurements tolerated; beyond, the rollout holds")
    error_limit: int = Field(default=4, ge=0, le=100, description="Consecutive failed queries "
                             "tolerated; one more rolls back")
    min_requests: int = Field(default=20, ge=0, le=1_000_000, description="Canary requests a window "
                              "needs; fewer make the measurement inconclusive")

    @property
    def pass_when(self) -> Direction:
        return Direction(self.direction or NATURAL_DIRECTION[AnalysisMetric(self.metric)])


def _default_checks() -> list[AnalysisCheck]:
    # Thresholds from the serving runtime's SLOs (ARCHITECTURE.md, the seed's 20 ms/token) and the
    # training-time router-health SLOs (imbalance < 1.6x, entropy > 1.1 nats).
    m = AnalysisMetric
    return [AnalysisCheck(name="error-rate", metric=m.ERROR_RATE, threshold=0.05),
            AnalysisCheck(name="latency-p95", metric=m.LATENCY_P95, threshold=0.5),
            AnalysisCheck(name="latency-per-token", metric=m.LATENCY_PER_TOKEN, threshold=0.02),
            AnalysisCheck(name="success-score", metric=m.SUCCESS_SCORE, threshold=0.8),
            AnalysisCheck(name="router-imbalance", metric=m.ROUTER_IMBALANCE, threshold=1.6),
            AnalysisCheck(name="router-entropy", metric=m.ROUTER_ENTROPY, threshold=1.1)]


class AnalysisSpec(WireModel):
    """Checks run at every step with analysis and, in the background, over the whole rollout."""

    checks: list[AnalysisCheck] = Field(
        default_factory=_default_checks, min_length=1, max_length=20,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})

    @field_validator("checks")
    @classmethod
    def _unique_names(cls, checks: list[AnalysisCheck]) -> list[AnalysisCheck]:
        # The API server enforces this through the list-map keys; pure code gets the same answer.
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise ValueError(f"check names must be unique: {names}")
        return checks


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(WireModel):
    RULES = (
        Rule("(self.operator in ['In', 'NotIn']) == (size(self.values) > 0)",
             "values must be set for In and NotIn and empty for Exists and DoesNotExist",
             lambda r: (r.operator in ("In", "NotIn")) == bool(r.values), ".values"),
    )

    key: str = Field(min_length=1, max_length=317)
    operator: SelectorOperator
    values: list[str] = Field(default_factory=list, max_length=100)


class LabelSelector(WireModel):
    """A Kubernetes label selector (matchLabels and matchExpressions, ANDed)."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[SelectorRequirement] = Field(default_factory=list, max_length=20)


class RolloutSpec(WireModel):
    """Phased canary over every AgentDeployment of the model line (the targets), wave by wave."""

    steps: list[CanaryStep] = Field(default_factory=lambda: [
        CanaryStep(weight=10, pause=Pause(duration="30s")),
        CanaryStep(weight=50, pause=Pause(duration="30s")),
        CanaryStep(weight=100),
    ], min_length=1, max_length=20)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    selector: LabelSelector | None = Field(
        default=None, description="Only AgentDeployments with these labels are targets")


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


class _StatusPart(WireModel):
    """Part of a status: written by the operator only, tolerant of fields an older one wrote."""

    model_config = ConfigDict(extra="ignore")


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"  # no data, NaN, too few requests, Prometheus unreachable
    ERROR = "Error"  # Prometheus refused the query


class Measurement(_StatusPart):
    """One judged measurement of one check on one target, as `kubectl tugboat status` shows it."""

    check: str
    metric: str
    query: str = ""
    value: float | None = None
    stable_value: float | None = None
    requests: float | None = None
    threshold: float
    direction: str
    verdict: Verdict
    message: str = ""
    time: datetime


class CheckProgress(_StatusPart):
    name: str
    passes: int = 0  # at the current step
    failures: int = 0  # over the whole rollout
    inconclusive: int = 0  # consecutive
    errors: int = 0  # consecutive
    last: Measurement | None = None


class Exposure(_StatusPart):
    """What the canary served (from Prometheus), cumulative over the rollout."""

    requests: float = 0.0
    tokens: float = 0.0


class TargetState(StrEnum):
    PENDING = "Pending"  # its wave has not started
    PROGRESSING = "Progressing"
    PAUSED = "Paused"  # waiting for a person (pause without duration, or kubectl tugboat pause)
    INCONCLUSIVE = "Inconclusive"  # holding: analysis cannot tell
    PROMOTED = "Promoted"  # every step passed: serves the release at 100%
    ROLLED_BACK = "RolledBack"


class TargetPlan(_StatusPart):
    """The release's plan for one AgentDeployment, which builds its serving from it."""

    namespace: str
    name: str
    tenant: str
    wave: int
    stable_release: str | None = None
    traffic: str | None = None  # Gateway (HTTPRoute weights) or ReplicaRatio
    state: TargetState = TargetState.PENDING
    step: int = 0  # index into spec.rollout.steps; len(steps) once every step passed
    weight: int = 0
    step_started_at: datetime | None = None
    pause_released: bool = False  # a person promoted this step: its pause is over
    checks: list[CheckProgress] = Field(default_factory=list)
    exposure: Exposure = Field(default_factory=Exposure)
    exposure_at_first_failure: Exposure | None = None
    breach_exposure: Exposure | None = None  # served between the first failure and weight 0
    message: str = ""


class Breach(_StatusPart):
    """Why a rollout was rolled back: the measurement that crossed its limit, or an abort."""

    reason: str
    message: str
    namespace: str | None = None
    target: str | None = None
    check: str | None = None
    metric: str | None = None
    query: str | None = None
    value: float | None = None
    threshold: float | None = None
    time: datetime


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    INCONCLUSIVE = "Inconclusive"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


class RolloutStatus(_StatusPart):
    phase: RolloutPhase | None = None
    reason: str | None = None  # of the last verdict, as in the conditions
    message: str | None = None
    wave: int | None = None  # the wave in progress
    step: int | None = None  # lowest step index (from 0, as Argo's) among that wave's targets
    weight: int | None = None  # highest canary weight among that wave's targets
    progress: str | None = None  # targets promoted / targets, e.g. "1/2"
    last_verdict: str | None = None
    paused: bool = False  # by kubectl tugboat pause, until resume
    handled_intent: str | None = None  # value of the last intent annotation acted upon
    breach: Breach | None = None
    exposure: Exposure = Field(default_factory=Exposure)
    breach_exposure: Exposure | None = None
    targets: list[TargetPlan] = Field(default_factory=list)


class ServedBy(WireModel):
    """An AgentDeployment serving this release today, and the graph its pods report serving."""

    namespace: str
    name: str
    graph: str | None = Field(default=None, description="fp32, fp16 or int8; unset until the pods "
                              "report it (needs the operator's Prometheus)")


class ModelReleaseStatus(StatusBase):
    artifact_uri: str | None = None
    graphs: list[GraphReport] | None = Field(default=None, description="Graphs of the verified artifact "
                                             "from its signed export report")
    manifest_digest: str | None = None
    registry_version: str | None = None
    export_job: str | None = None
    rollout: RolloutStatus | None = None
    served_by: list[ServedBy] | None = None


PRINTER_COLUMNS = [
    {"name": "Line", "type": "string", "jsonPath": ".spec.modelLine"},
    {"name": "Version", "type": "string", "jsonPath": ".status.registryVersion"},
    {"name": "Wave", "type": "integer", "jsonPath": ".status.rollout.wave"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.rollout.step"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.rollout.weight"},
    {"name": "Targets", "type": "string", "jsonPath": ".status.rollout.progress"},
    {"name": "Analysis", "type": "string", "jsonPath": ".status.rollout.lastVerdict"},
    {"name": "Digest", "type": "string", "jsonPath": ".status.manifestDigest", "priority": 1},
]
