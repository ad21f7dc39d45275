"""AgentDeployment: a tenant's isolated endpoint serving a verified release with guardrails."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .base import DNS_LABEL, QUANTITY, Name, PermissionLevel, Rule, StatusBase, WireModel


class AutoscalingSpec(WireModel):
    """A HorizontalPodAutoscaler on CPU for the stable track."""

    RULES = (
        Rule("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas",
             lambda a: a.min_replicas <= a.max_replicas, ".minReplicas"),
    )

    enabled: bool = Field(default=False, description="Scale with an HPA instead of spec.replicas; "
                          "default false")
    min_replicas: int = Field(default=1, ge=1, le=1000, description="Fewest replicas; default 1")
    max_replicas: int = Field(default=3, ge=1, le=1000, description="Most replicas; default 3")
    target_cpu_utilization: int = Field(default=70, ge=1, le=100, description="Average CPU "
                                        "utilization the HPA aims at, percent 1-100; default 70")


class ServingResources(WireModel):
    """Resources of each serving pod."""

    cpu: str = Field(default="500m", pattern=QUANTITY, description="CPU per pod, Kubernetes "
                     "quantity; default 500m")
    memory: str = Field(default="1Gi", pattern=QUANTITY, description="Memory per pod, Kubernetes "
                        "quantity; default 1Gi")
    gpus: int = Field(default=0, ge=0, le=16, description="GPUs per pod (0-16); default 0")


class PromptFilter(WireModel):
    """Prompts refused before they reach the model."""

    deny_patterns: list[str] = Field(default_factory=list, max_length=100, description="Regular "
                                     "expressions; a prompt matching one is refused; default none")
    max_prompt_chars: int = Field(default=2048, ge=1, le=1_000_000, description="Longest prompt "
                                  "accepted, in characters; default 2048")


class ToolPolicy(WireModel):
    allowed: list[str] = Field(default_factory=list, max_length=100,
                               description="Tools a request may ask for; default none",
                               json_schema_extra={"x-kubernetes-list-type": "set"})


class FallbackMode(StrEnum):
    SIMPLE_MODEL = "SimpleModel"
    REFUSE = "Refuse"


class FallbackSpec(WireModel):
    """What happens to an answer the model is not confident of."""

    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="Lowest model "
                                  "confidence (0-1) answered as is; default 0.5")
    mode: FallbackMode = Field(default=FallbackMode.REFUSE, description="Refuse (default); "
                               "SimpleModel is refused as not servable yet")


class DetectorKind(StrEnum):
    TASK = "Task"
    REGEX = "Regex"
    JSON_SCHEMA = "JsonSchema"
    REFERENCE = "Reference"


class ReferenceMatch(StrEnum):
    EXACT = "exact"
    PARTIAL = "partial"


class SuccessDetectorSpec(WireModel):
    """How the serving runtime scores an answer as a success (the SuccessScore metric)."""

    RULES = (
        Rule("self.kind != 'Regex' || has(self.pattern)", "kind Regex requires pattern",
             lambda d: d.kind != DetectorKind.REGEX or d.pattern is not None, ".pattern"),
        Rule("self.kind != 'JsonSchema' || has(self.schema)", "kind JsonSchema requires schema",
             lambda d: d.kind != DetectorKind.JSON_SCHEMA or d.schema_text is not None, ".schema"),
        Rule("self.kind != 'Reference' || has(self.reference)", "kind Reference requires reference",
             lambda d: d.kind != DetectorKind.REFERENCE or d.reference is not None, ".reference"),
    )

    kind: DetectorKind = Field(default=DetectorKind.TASK, description="Task (default), Regex, "
                               "JsonSchema or Reference")
    pattern: str | None = Field(default=None, max_length=4096,
                                description="Regular expression an answer must match, for kind Regex")
    schema_text: str | None = Field(default=None, max_length=65536, alias="schema",
                                    description="JSON Schema (as JSON text) for kind JsonSchema")
    reference: str | None = Field(default=None, max_length=65536,
                                  description="Expected answer for kind Reference")
    match: ReferenceMatch = Field(default=ReferenceMatch.EXACT, description="exact (default) or "
                                  "partial match of the reference, for kind Reference")


class GuardrailsSpec(WireModel):
    """Checks the serving runtime applies to every request."""

    prompt_filter: PromptFilter = Field(default_factory=PromptFilter, description="Prompt refusals")
    tools: ToolPolicy = Field(default_factory=ToolPolicy, description="Tool allowlist")
    fallback: FallbackSpec = Field(default_factory=FallbackSpec, description="Low-confidence answers")
    permission_level: PermissionLevel = Field(
        default=PermissionLevel.STANDARD, description="Highest permission level a request may ask "
        "for: ReadOnly, Standard (default) or Elevated; capped by the Tenant's")
    success_detector: SuccessDetectorSpec = Field(default_factory=SuccessDetectorSpec,
                                                  description="Success scoring of answers")


class ModelGraph(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class GraphSpec(WireModel):
    """Which graph of the artifact the pods serve."""

    preferred: ModelGraph = Field(
        default=ModelGraph.FP32,
        description="Graph of the release's artifact to serve: fp32 (default), fp16 or int8. A "
                    "reduced-precision graph is served only if the export published it and it passes "
                    "the artifact's numerics probe on the serving node's own CPU")
    fallback_to_fp32: bool = Field(
        default=True, description="Serve the fp32 graph when the preferred one is not published or "
                                  "fails the probe on the node (false: such a pod does not become ready)")


# What Gateway API accepts in an HTTPRoute (a DNS name, optionally one leading wildcard label):
# refused at apply time here rather than by the route's schema after the deployment was admitted.
Hostname = Annotated[str, Field(min_length=1, max_length=253,
                                pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]


class GatewayRef(WireModel):
    """A Gateway API parentRef: the Gateway (and listener) the deployment's HTTPRoute attaches to."""

    name: Name = Field(description="Gateway name")
    namespace: Name | None = Field(default=None, description="Gateway namespace; default: the "
                                   "AgentDeployment's")
    section_name: Name | None = Field(default=None, description="Listener of the Gateway; "
                                      "default: every listener")


class TrafficSpec(WireModel):
    """How canary traffic is split for this deployment."""

    # Here, not on the ModelRelease: one release reaches many tenants, each with a route of its own.

    gateway_ref: GatewayRef | None = Field(
        default=None, description="Weight an HTTPRoute attached to this Gateway; "
        "without it traffic moves by replica ratio behind one Service")
    http_route: Name | None = Field(default=None, description="Name of the HTTPRoute the operator "
                                    "builds (and owns); default: the AgentDeployment's name")
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16, description="Hostnames of the "
                                      "HTTPRoute; empty: every hostname the listener serves")


class AgentDeploymentSpec(WireModel):
    model_line: Name = Field(description="Model line to serve; the Tenant must allow it")
    release: Name | None = Field(default=None, description="Pin a release of the model line; "
                                 "default: the releases its rollouts promote")
    replicas: int = Field(default=1, ge=0, le=1000, description="Stable-track replicas without "
                          "autoscaling; default 1")
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, description="CPU "
                                         "autoscaling; default off")
    resources: ServingResources = Field(default_factory=ServingResources,
                                        description="Resources of each serving pod")
    node_pool: str = Field(default="cpu", pattern=DNS_LABEL, max_length=63, description="Node pool "
                           "of the serving pods; the Tenant must allow it; default cpu")
    guardrails: GuardrailsSpec = Field(default_factory=GuardrailsSpec, description="Request "
                                       "guardrails of the serving runtime")
    graph: GraphSpec = Field(default_factory=GraphSpec, description="Graph choice")
    traffic: TrafficSpec = Field(default_factory=TrafficSpec, description="Canary traffic split")


class GraphStatus(WireModel):
    """The graph asked for and the one served."""

    requested: ModelGraph = Field(description="spec.graph.preferred")
    served: ModelGraph | None = Field(default=None, description="Graph the pods serve (fp32 when the "
                                      "preferred one was not published or failed the numerics probe)")
    message: str | None = Field(default=None, description="Why the served graph differs")


class TrafficMode(StrEnum):
    GATEWAY = "Gateway"            # weights of an HTTPRoute's backendRefs
    REPLICA_RATIO = "ReplicaRatio"  # no Gateway API: both tracks' pods behind one Service


class RouteStatus(WireModel):
    """The HTTPRoute the operator owns, as its Gateway reported it (status.parents)."""

    name: str = Field(description="HTTPRoute name")
    accepted: bool | None = Field(default=None, description="Accepted condition of the parent; "
                                  "absent until the Gateway implementation reports")
    reason: str | None = Field(default=None, description="Reason of the Accepted condition")
    message: str | None = Field(default=None, description="Message of the Accepted condition")


class AgentDeploymentStatus(StatusBase):
    ready_replicas: int | None = Field(default=None, description="Ready serving pods")
    release: str | None = Field(default=None, description="ModelRelease served")
    release_digest: str | None = Field(default=None, description="Manifest SHA-256 of that release")
    endpoint: str | None = Field(default=None, description="In-cluster URL of the serving Service")
    graph: GraphStatus | None = Field(default=None, description="Graph requested and served")
    stable_release: str | None = Field(default=None, description="Release the stable track serves "
                                       "(the last one promoted here); rollouts protect it")
    canary_release: str | None = Field(default=None, description="Release the canary track serves")
    canary_weight: int | None = Field(default=None, ge=0, le=100,
                                      description="Canary share of traffic, percent 0-100")
    canary_idle_since: datetime | None = Field(
        default=None, description="When the canary's weight went to 0: its Deployment goes after a delay")
    traffic: TrafficMode | None = Field(default=None, description="Gateway (HTTPRoute weights) or "
                                        "ReplicaRatio (replica counts behind one Service)")
    route: RouteStatus | None = Field(default=None, description="The operator's HTTPRoute, in "
                                      "Gateway mode")


PRINTER_COLUMNS = [
    {"name": "Line", "type": "string", "jsonPath": ".spec.modelLine"},
    {"name": "Release", "type": "string", "jsonPath": ".status.release"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRelease"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRelease"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
    {"name": "Traffic", "type": "string", "jsonPath": ".status.traffic", "priority": 1},
    {"name": "Graph", "type": "string", "jsonPath": ".status.graph.served"},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
    {"name": "BudgetStore", "type": "string", "priority": 1,
     "jsonPath": '.status.conditions[?(@.type=="BudgetStore")].status'},
]
