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

    training_run: Name | None = Field(default=None, description="TrainingRun in this namespace whose "
                                      "checkpoint is released; exclusive with modelUri")
    model_uri: str | None = Field(default=None, max_length=2048, pattern=r"^(file|s3|gs|https?|models)://.+",
                                  description="Checkpoint URI (file, s3, gs, http(s) or models://); "
                                  "exclusive with trainingRun, requires digest")
    digest: str | None = Field(default=None, pattern=SHA256_HEX,
                               description="Expected SHA-256 (64 hex digits) of the model files at modelUri")


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
    """How the checkpoint is exported to servable graphs."""

    targets: list[ExportTarget] = Field(default_factory=lambda: [ExportTarget.ONNX], min_length=1,
                                        description="Formats to export: onnx, tensorrt; default [onnx]",
                                        json_schema_extra={"x-kubernetes-list-type": "set"})
    # The dynamo ONNX exporter emits opset 18 and later.
    opset: int = Field(default=18, ge=18, le=23, description="ONNX opset version (18-23); default 18")
    tolerance: float = Field(default=1e-4, gt=0.0, le=1.0,
                             description="Max absolute ONNX-vs-torch error for fp32 (0-1]; "
                                         "default 1e-4")
    variants: list[Variant] = Field(default_factory=list,
                                    description="Reduced-precision graphs to export besides fp32: "
                                                "fp16, int8; default none",
                                    json_schema_extra={"x-kubernetes-list-type": "set"})
    min_top1_agreement: float = Field(
        default=0.97, gt=0.0, le=1.0,
        description="Share of top-1 choices each variant must share with torch, on held-out inputs and "
                    "on the numerics probe, to be published in the artifact; serving nodes re-check "
                    "the probe on their own CPU. A variant below it is left out, the release does not fail. "
                    "Fraction (0-1]; default 0.97")
    tensorrt_precision: TensorRTPrecision = Field(
        default=TensorRTPrecision.FP16, description="Precision of the TensorRT engine: fp16 "
        "(default) or fp32")
    node_pool: str = Field(default="cpu", pattern=DNS_LABEL, max_length=63,
                           description="Node pool of the ONNX export and signing Jobs; default cpu")
    gpu_node_pool: str = Field(default="gpu", pattern=DNS_LABEL, max_length=63,
                               description="Node pool of the TensorRT engine build Job; default gpu")


class SigningMethod(StrEnum):
    KEY = "Key"
    SIGSTORE_KEYLESS = "SigstoreKeyless"


class SigningSpec(WireModel):
    """How the export's manifest of file digests is signed."""

    RULES = (
        Rule("self.method != 'Key' || has(self.keySecretRef)", "method Key requires keySecretRef",
             lambda s: s.method != SigningMethod.KEY or s.key_secret_ref is not None, ".keySecretRef"),
    )

    method: SigningMethod = Field(default=SigningMethod.KEY, description="Key (default): an EC key "
                                  "from keySecretRef; SigstoreKeyless is refused as not supported yet")
    key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding the PKCS8 EC private key; default "
                                  "tugboat-signing-key, key private.pem")


class RegistrySpec(WireModel):
    """Where the verified release is registered in MLflow."""

    model_name: str | None = Field(default=None, max_length=256,
                                   description="MLflow registered model; defaults to modelLine")
    alias: str = Field(default="production", pattern=r"^[a-z][a-z0-9_-]*$", max_length=63,
                       description="MLflow alias moved to this version once the rollout is Promoted; "
                                   "default production")


class Pause(WireModel):
    """Wait at a step: for `duration`, or, without one, until a person promotes."""

    duration: str | None = Field(default=None, pattern=DURATION,
                                 description="Duration (e.g. 30s, 5m, 1h30m); absent: until "
                                             "`kubectl tugboat promote`")


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

    name: Name = Field(description="Check name, unique in the list")
    metric: AnalysisMetric = Field(description="Built-in measurement (ErrorRate fraction, LatencyP95 "
                                   "seconds, LatencyPerToken seconds, SuccessScore fraction, "
                                   "RouterImbalance ratio, RouterEntropy nats) or Custom with query")
    threshold: float = Field(description="Limit the value is compared with, in the metric's unit")
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
    window: str = Field(default="1m", pattern=DURATION,
                        description="Range each measurement covers (duration); default 1m")
    interval: str = Field(default="15s", pattern=DURATION,
                          description="Time between measurements (duration); default 15s")
    count: int = Field(default=3, ge=1, le=100,
                       description="Passing measurements each step with analysis needs; default 3")
    failure_limit: int = Field(default=0, ge=0, le=100, description="Failed measurements tolerated "
                               "in a rollout; one more rolls back; default 0")
    inconclusive_limit: int = Field(default=3, ge=0, le=100, description="Consecutive inconclusive "
                                    "measurements tolerated; beyond, the rollout holds; default 3")
    error_limit: int = Field(default=4, ge=0, le=100, description="Consecutive failed queries "
                             "tolerated; one more rolls back; default 4")
    min_requests: int = Field(default=20, ge=0, le=1_000_000, description="Canary requests a window "
                              "needs; fewer make the measurement inconclusive; default 20")

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
        description="1-20 checks, unique by name; default: error-rate, latency-p95, "
                    "latency-per-token, success-score, router-imbalance, router-entropy",
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
    """One label requirement, as in a Kubernetes label selector."""

    RULES = (
        Rule("(self.operator in ['In', 'NotIn']) == (size(self.values) > 0)",
             "values must be set for In and NotIn and empty for Exists and DoesNotExist",
             lambda r: (r.operator in ("In", "NotIn")) == bool(r.values), ".values"),
    )

    key: str = Field(min_length=1, max_length=317, description="Label key")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist")
    values: list[str] = Field(default_factory=list, max_length=100, description="Label values: set "
                              "for In and NotIn, empty for Exists and DoesNotExist")


class LabelSelector(WireModel):
    """A Kubernetes label selector (matchLabels and matchExpressions, ANDed)."""

    match_labels: dict[str, str] = Field(default_factory=dict,
                                         description="Labels a target must carry, key: value")
    match_expressions: list[SelectorRequirement] = Field(default_factory=list, max_length=20,
                                                         description="Requirements a target must meet")


class RolloutSpec(WireModel):
    """Phased canary over every AgentDeployment of the model line (the targets), wave by wave."""

    steps: list[CanaryStep] = Field(default_factory=lambda: [
        CanaryStep(weight=10, pause=Pause(duration="30s")),
        CanaryStep(weight=50, pause=Pause(duration="30s")),
        CanaryStep(weight=100),
    ], min_length=1, max_length=20, description="1-20 canary steps run in order on every target; "
       "default: 10% pause 30s, 50% pause 30s, 100%")
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec,
                                   description="Checks that gate steps and roll back on failure")
    selector: LabelSelector | None = Field(
        default=None, description="Only AgentDeployments with these labels are targets")


class ModelReleaseSpec(WireModel):
    model_line: Name = Field(description="Model line this release belongs to (what tenants allow)")
    source: ReleaseSource = Field(description="What to release: a TrainingRun or a model URI")
    export: ExportSpec = Field(default_factory=ExportSpec, description="Export of the checkpoint "
                               "to servable graphs")
    signing: SigningSpec = Field(default_factory=lambda: SigningSpec(
        key_secret_ref=SecretKeyRef(name="tugboat-signing-key")),
        description="Signing of the export; default: method Key with Secret tugboat-signing-key")
    registry: RegistrySpec = Field(default_factory=RegistrySpec, description="MLflow registration")
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="Phased canary over "
                                 "the model line's AgentDeployments")


class GraphReport(WireModel):
    """One graph of the export: its numbers against torch, and whether it was published."""

    name: str = Field(description="Graph name: fp32, fp16, int8 or a TensorRT engine")
    file: str = Field(description="File of the graph in the artifact")
    published: bool = Field(description="Whether serving may load it")
    top1_agreement: float | None = Field(default=None, description="Share of top-1 choices equal "
                                         "to torch's on held-out inputs (fraction 0-1)")
    probe_top1_agreement: float | None = Field(default=None, description="Same on the numerics "
                                               "probe (fraction 0-1)")
    max_abs_error: float | None = Field(default=None, description="Max absolute error against torch")
    reason: str | None = Field(default=None, description="Why it was left out, when not published")


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

    check: str = Field(description="Name of the check")
    metric: str = Field(description="Metric of the check")
    query: str = Field(default="", description="PromQL sent, after substitution")
    value: float | None = Field(default=None, description="Canary value, in the metric's unit")
    stable_value: float | None = Field(default=None, description="Stable track's value over the "
                                       "same window (for maxRegression)")
    requests: float | None = Field(default=None, description="Canary requests in the window")
    threshold: float = Field(description="Threshold judged against")
    direction: str = Field(description="AtMost or AtLeast")
    verdict: Verdict = Field(description="Pass, Fail, Inconclusive or Error")
    message: str = Field(default="", description="Why the verdict")
    time: datetime = Field(description="When measured (RFC 3339)")


class CheckProgress(_StatusPart):
    """Counters of one check on one target."""

    name: str = Field(description="Name of the check")
    passes: int = Field(default=0, description="Passing measurements at the current step")
    failures: int = Field(default=0, description="Failed measurements over the whole rollout")
    inconclusive: int = Field(default=0, description="Consecutive inconclusive measurements")
    errors: int = Field(default=0, description="Consecutive failed queries")
    last: Measurement | None = Field(default=None, description="Latest measurement")


class Exposure(_StatusPart):
    """What the canary served (from Prometheus), cumulative over the rollout."""

    requests: float = Field(default=0.0, description="Requests the canary served")
    tokens: float = Field(default=0.0, description="Tokens the canary generated")


class TargetState(StrEnum):
    PENDING = "Pending"  # its wave has not started
    PROGRESSING = "Progressing"
    PAUSED = "Paused"  # waiting for a person (pause without duration, or kubectl tugboat pause)
    INCONCLUSIVE = "Inconclusive"  # holding: analysis cannot tell
    PROMOTED = "Promoted"  # every step passed: serves the release at 100%
    ROLLED_BACK = "RolledBack"


class TargetPlan(_StatusPart):
    """The release's plan for one AgentDeployment, which builds its serving from it."""

    namespace: str = Field(description="Namespace of the AgentDeployment")
    name: str = Field(description="Name of the AgentDeployment")
    tenant: str = Field(description="Tenant owning the namespace")
    wave: int = Field(description="The tenant's spec.rollout.wave")
    stable_release: str | None = Field(default=None, description="Release its stable track serves")
    traffic: str | None = Field(default=None, description="Gateway (HTTPRoute weights) or ReplicaRatio")
    state: TargetState = Field(default=TargetState.PENDING, description="Pending, Progressing, "
                               "Paused, Inconclusive, Promoted or RolledBack")
    step: int = Field(default=0, description="Index into spec.rollout.steps (from 0); the number "
                      "of steps once every step passed")
    weight: int = Field(default=0, description="Canary weight now, percent 0-100")
    step_started_at: datetime | None = Field(default=None, description="When the current step began")
    pause_released: bool = Field(default=False, description="A person promoted this step: its "
                                 "pause is over")
    checks: list[CheckProgress] = Field(default_factory=list, description="Progress of each check")
    exposure: Exposure = Field(default_factory=Exposure, description="What its canary served")
    exposure_at_first_failure: Exposure | None = Field(default=None, description="Exposure when "
                                                       "the first measurement failed")
    breach_exposure: Exposure | None = Field(default=None, description="Served between the first "
                                             "failure and weight 0")
    message: str = Field(default="", description="Human-readable state detail")


class Breach(_StatusPart):
    """Why a rollout was rolled back: the measurement that crossed its limit, or an abort."""

    reason: str = Field(description="CamelCase cause, as in the conditions")
    message: str = Field(description="Human-readable cause")
    namespace: str | None = Field(default=None, description="Namespace of the target that breached")
    target: str | None = Field(default=None, description="AgentDeployment that breached")
    check: str | None = Field(default=None, description="Check that crossed its limit")
    metric: str | None = Field(default=None, description="Metric of that check")
    query: str | None = Field(default=None, description="PromQL of the measurement")
    value: float | None = Field(default=None, description="Measured value, in the metric's unit")
    threshold: float | None = Field(default=None, description="Threshold of the check")
    time: datetime = Field(description="When (RFC 3339)")


class RolloutPhase(StrEnum):
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    INCONCLUSIVE = "Inconclusive"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


class RolloutStatus(_StatusPart):
    """The phased canary, summed up over its targets (the flat fields feed kubectl get)."""

    phase: RolloutPhase | None = Field(default=None, description="Progressing, Paused, "
                                       "Inconclusive, Promoted or RolledBack")
    reason: str | None = Field(default=None, description="Reason of the last verdict, as in the "
                               "conditions")
    message: str | None = Field(default=None, description="Human-readable detail of the last verdict")
    wave: int | None = Field(default=None, description="The wave in progress (or the last one)")
    step: int | None = Field(default=None, description="Lowest step index (from 0, as Argo's) among "
                             "that wave's active targets")
    weight: int | None = Field(default=None, description="Highest canary weight (percent 0-100) "
                               "among that wave's targets")
    progress: str | None = Field(default=None, description="Targets promoted / targets, e.g. 1/2")
    last_verdict: str | None = Field(default=None, description="Most severe latest measurement over "
                                     "all targets: verdict, check and message")
    paused: bool = Field(default=False, description="Paused by `kubectl tugboat pause`, until resume")
    handled_intent: str | None = Field(default=None, description="Value of the last "
                                       "tugboat.dev/rollout-intent annotation acted upon")
    breach: Breach | None = Field(default=None, description="Why the rollout was rolled back")
    exposure: Exposure = Field(default_factory=Exposure, description="What all canaries served")
    breach_exposure: Exposure | None = Field(default=None, description="Served between the first "
                                             "failure and weight 0, over all targets")
    targets: list[TargetPlan] = Field(default_factory=list, description="Plan and state of each "
                                      "AgentDeployment of the model line")


class ServedBy(WireModel):
    """An AgentDeployment serving this release today, and the graph its pods report serving."""

    namespace: str = Field(description="Namespace of the AgentDeployment")
    name: str = Field(description="Name of the AgentDeployment")
    graph: str | None = Field(default=None, description="fp32, fp16 or int8; unset until the pods "
                              "report it (needs the operator's Prometheus)")


class ModelReleaseStatus(StatusBase):
    artifact_uri: str | None = Field(default=None, description="URI of the exported, signed artifact")
    graphs: list[GraphReport] | None = Field(default=None, description="Graphs of the verified artifact "
                                             "from its signed export report")
    manifest_digest: str | None = Field(default=None, description="SHA-256 of the verified manifest "
                                        "of per-file digests")
    registry_version: str | None = Field(default=None, description="MLflow model version registered")
    rollout: RolloutStatus | None = Field(default=None, description="Phased canary progress")
    served_by: list[ServedBy] | None = Field(default=None, description="AgentDeployments serving "
                                             "this release today")


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
