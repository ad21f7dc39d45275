"""AgentDeployment: a tenant's isolated endpoint serving a verified release with guardrails."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .base import DNS_LABEL, QUANTITY, Name, PermissionLevel, Rule, StatusBase, WireModel


class AutoscalingSpec(WireModel):
    RULES = (
        Rule("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas",
             lambda a: a.min_replicas <= a.max_replicas, ".minReplicas"),
    )

    enabled: bool = False
    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int = Field(default=3, ge=1, le=1000)
    target_cpu_utilization: int = Field(default=70, ge=1, le=100)


class ServingResources(WireModel):
    cpu: str = Field(default="500m", pattern=QUANTITY)
    memory: str = Field(default="1Gi", pattern=QUANTITY)
    gpus: int = Field(default=0, ge=0, le=16)


class PromptFilter(WireModel):
    deny_patterns: list[str] = Field(default_factory=list, max_length=100)
    max_prompt_chars: int = Field(default=2048, ge=1, le=1_000_000)


class ToolPolicy(WireModel):
    allowed: list[str] = Field(default_factory=list, max_length=100,
                               json_schema_extra={"x-kubernetes-list-type": "set"})


class FallbackMode(StrEnum):
    SIMPLE_MODEL = "SimpleModel"
    REFUSE = "Refuse"


class FallbackSpec(WireModel):
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    mode: FallbackMode = FallbackMode.REFUSE


class DetectorKind(StrEnum):
    TASK = "Task"
    REGEX = "Regex"
    JSON_SCHEMA = "JsonSchema"
    REFERENCE = "Reference"


class ReferenceMatch(StrEnum):
    EXACT = "exact"
    PARTIAL = "partial"


class SuccessDetectorSpec(WireModel):
    RULES = (
        Rule("self.kind != 'Regex' || has(self.pattern)", "kind Regex requires pattern",
             lambda d: d.kind != DetectorKind.REGEX or d.pattern is not None, ".pattern"),
        Rule("self.kind != 'JsonSchema' || has(self.schema)", "kind JsonSchema requires schema",
             lambda d: d.kind != DetectorKind.JSON_SCHEMA or d.schema_text is not None, ".schema"),
        Rule("self.kind != 'Reference' || has(self.reference)", "kind Reference requires reference",
             lambda d: d.kind != DetectorKind.REFERENCE or d.reference is not None, ".reference"),
    )

    kind: DetectorKind = DetectorKind.TASK
    pattern: str | None = Field(default=None, max_length=4096)
    schema_text: str | None = Field(default=None, max_length=65536, alias="schema",
                                    description="JSON Schema (as JSON text) for kind JsonSchema")
    reference: str | None = Field(default=None, max_length=65536,
                                  description="Expected answer for kind Reference")
    match: ReferenceMatch = ReferenceMatch.EXACT


class GuardrailsSpec(WireModel):
    prompt_filter: PromptFilter = Field(default_factory=PromptFilter)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    fallback: FallbackSpec = Field(default_factory=FallbackSpec)
    permission_level: PermissionLevel = PermissionLevel.STANDARD
    success_detector: SuccessDetectorSpec = Field(default_factory=SuccessDetectorSpec)


class ModelGraph(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class GraphSpec(WireModel):
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

    name: Name
    namespace: Name | None = Field(default=None, description="Default: the AgentDeployment's")
    section_name: Name | None = Field(default=None, description="Listener of the Gateway")


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
    model_line: Name
    release: Name | None = Field(default=None, description="Pin a release of the model line")
    replicas: int = Field(default=1, ge=0, le=1000)
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    resources: ServingResources = Field(default_factory=ServingResources)
    node_pool: str = Field(default="cpu", pattern=DNS_LABEL, max_length=63)
    guardrails: GuardrailsSpec = Field(default_factory=GuardrailsSpec)
    graph: GraphSpec = Field(default_factory=GraphSpec)
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)


class GraphStatus(WireModel):
    requested: ModelGraph
    served: ModelGraph | None = Field(default=None, description="Graph the pods serve (fp32 when the "
                                      "preferred one was not published or failed the numerics probe)")
    message: str | None = None


class TrafficMode(StrEnum):
    GATEWAY = "Gateway"            # weights of an HTTPRoute's backendRefs
    REPLICA_RATIO = "ReplicaRatio"  # no Gateway API: both tracks' pods behind one Service


class RouteStatus(WireModel):
    """The HTTPRoute the operator owns, as its Gateway reported it (status.parents)."""

    name: str
    accepted: bool | None = Field(default=None, description="Accepted condition of the parent; "
                                  "absent until the Gateway implementation reports")
    reason: str | None = None
    message: str | None = None


class AgentDeploymentStatus(StatusBase):
    ready_replicas: int | None = None
    release: str | None = None
    release_digest: str | None = None
    endpoint: str | None = None
    graph: GraphStatus | None = None
    stable_release: str | None = Field(default=None, description="Release the stable track serves "
                                       "(the last one promoted here); rollouts protect it")
    canary_release: str | None = None
    canary_weight: int | None = Field(default=None, ge=0, le=100)
    canary_idle_since: datetime | None = Field(
        default=None, description="When the canary's weight went to 0: its Deployment goes after a delay")
    traffic: TrafficMode | None = None
    route: RouteStatus | None = None


PRINTER_COLUMNS = [
    {"name": "Line", "type": "string", "jsonPath": ".spec.modelLine"},
    {"name": "Release", "type": "string", "jsonPath": ".status.release"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRelease", "priority": 1},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRelease"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
    {"name": "Traffic", "type": "string", "jsonPath": ".status.traffic", "priority": 1},
    {"name": "Graph", "type": "string", "jsonPath": ".status.graph.served"},
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
]
