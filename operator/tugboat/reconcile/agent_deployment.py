"""AgentDeployment: judge the spec against its Tenant, build the stable and canary tracks the
releases' rollout plans ask for, desire the serving objects, and report readiness. Pure.

Decides validity (tenant, model line, node pool, GPU limit, detector schema and pattern, deny
patterns in the runtime's RE2 dialect, a fallback it can serve), the serving
objects of both tracks (which releases they serve is `release_tracks`' rule), the canary's
pods (following the weight; at weight 0 they go after a delay through a gateway, at once by
replica ratio, where pods are the split), the hand-over after a promotion (the canary keeps the
traffic until the stable track serves the promoted release) and the status (its BudgetStore
condition is `budget_store`'s). Never serves anything unverified: without a verified release or
a trusted key no Deployment is desired and existing ones are deleted. Must not read the cluster
or the clock (`now` comes in).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime

from tugboat_workloads.serve.deny_pattern import DenyPatternError, compile_deny_pattern
from tugboat_workloads.serve.success_detector import schema_problem

from ..api.agent_deployment import (
    AgentDeploymentSpec,
    AgentDeploymentStatus,
    DetectorKind,
    FallbackMode,
    RouteStatus,
    TrafficMode,
)
from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT
from ..api.model_release import TargetPlan, TargetState
from ..builders.agent_deployment import (
    CANARY,
    STABLE,
    CanaryTrack,
    ServingConfig,
    ServingContext,
    ServingRelease,
    build_serving_objects,
    canary_replicas,
    deployment_name,
    endpoint,
    route_name,
    serving_name,
)
from ..builders.naming import label_value
from ..reasons import Reason
from .budget_store import StoreProbe, with_budget_store
from .outcome import EventIntent, Meta, Outcome, phase_event, set_conditions
from .release_tracks import ReleaseView, Tracks, tracks_for
from .serving_graph import PublishedGraph, plan_graph
from .tenancy import TenantView, model_line_allowed, node_pool_allowed, require_tenant
from .trust_key import key_problem
from .validity import validate

CANARY_SCALE_DOWN_DELAY = 30.0  # seconds a canary at weight 0 keeps its pods (in-flight requests)
GRAPH_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class DeploymentView:
    """Our Deployment as the API server last reported it."""

    replicas: int  # spec.replicas, which the HPA may have changed
    ready: int
    updated: int
    current: bool  # the controller has seen the latest spec (observedGeneration)
    release: str | None
    digest: str | None
    failure: str | None  # message of a ReplicaFailure condition (e.g. quota exceeded)
    # status.replicas: pods of every template, an old one's included (absent when there are none)
    total: int | None = None

    @property
    def only_current_pods(self) -> bool:
        """No pod of an older template is left (readyReplicas counts those too)."""
        return self.total is None or self.total <= self.updated


@dataclass(frozen=True)
class Observed:
    meta: Meta
    spec: dict
    status: AgentDeploymentStatus
    tenant: TenantView | None  # the Tenant whose namespaces include this object's
    releases: tuple[ReleaseView, ...] = ()  # of this model line, any namespace
    trust_pem: str | None = None
    deployment: DeploymentView | None = None
    hpa_exists: bool = False
    config: ServingConfig | None = None
    trust_source: str = "tugboat-system/tugboat-trust"  # namespace/name of the trust ConfigMap
    served_graphs: dict[str, int] | None = None  # pods per graph they serve; None: not observable
    canary_deployment: DeploymentView | None = None
    route: RouteStatus | None = None  # our HTTPRoute's acceptance (gateway mode, once it exists)
    # A route of our route's name that another owns (a person, another deployment): never written.
    route_foreign_owner: str | None = None
    gateway_found: bool | None = None  # the Gateway of spec.traffic.gatewayRef; None: not looked up
    gateway_api: bool = True  # the cluster serves Gateway API HTTPRoutes
    budget_store: StoreProbe | None = None  # the shared token budget store; None: none configured


def _plan_for(rollout: dict, target: tuple[str, str] | None) -> TargetPlan | None:
    for raw in rollout.get("targets") or []:
        if isinstance(raw, dict) and target == (raw.get("namespace"), raw.get("name")):
            try:
                return TargetPlan.model_validate(raw)
            except ValueError:
                return None  # unreadable: as if there were no plan, so nothing moves on it
    return None


def summarize_release(obj: dict, target: tuple[str, str] | None = None) -> ReleaseView:
    """`target`: (namespace, name) of the AgentDeployment whose plan to pick from the rollout."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    verified = any(c.get("type") == "Verified" and c.get("status") == "True"
                   for c in status.get("conditions") or [])
    graphs = tuple(PublishedGraph(g.get("name", ""), bool(g.get("published")), g.get("reason"))
                   for g in status.get("graphs") or [] if isinstance(g, dict))
    rollout = status.get("rollout")
    rollout = rollout if isinstance(rollout, dict) else None
    return ReleaseView(meta["name"], meta.get("namespace") or "", spec.get("modelLine", ""), verified,
                       status.get("phase"), status.get("artifactUri"), status.get("manifestDigest"),
                       meta.get("creationTimestamp") or "", graphs,
                       plan=_plan_for(rollout, target) if rollout else None,
                       rollout_reason=(rollout or {}).get("reason"), has_rollout=rollout is not None)


def summarize_route(obj: dict) -> RouteStatus:
    """Accepted when every parent that reported accepted the route (a conformant implementation
    writes one status.parents entry per parentRef it manages)."""
    parents = (obj.get("status") or {}).get("parents") or []
    conds = [c for p in parents for c in p.get("conditions") or [] if c.get("type") == "Accepted"]
    name = obj["metadata"]["name"]
    if not conds:
        return RouteStatus(name=name, message="no Gateway has reported on the route yet")
    refused = [c for c in conds if c.get("status") != "True"]
    shown = refused[0] if refused else conds[0]
    return RouteStatus(name=name, accepted=not refused, reason=shown.get("reason"),
                       message=shown.get("message"))


def summarize_deployment(obj: dict) -> DeploymentView:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    template = spec.get("template") or {}
    failure = next((c.get("message") or c.get("reason") for c in status.get("conditions") or []
                    if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    return DeploymentView(
        replicas=int(spec.get("replicas", 1)), ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        current=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
        release=((template.get("metadata") or {}).get("labels") or {}).get("tugboat.dev/release"),
        digest=((template.get("metadata") or {}).get("annotations") or {}).get("tugboat.dev/manifest-digest"),
        failure=failure, total=int(status["replicas"]) if "replicas" in status else None)


def _gpus_within_limit(tenant: TenantView | None):
    def check(spec: AgentDeploymentSpec):
        if tenant is None:
            return None
        scale = spec.autoscaling.max_replicas if spec.autoscaling.enabled else spec.replicas
        peak = spec.resources.gpus * scale
        quota = tenant.spec.quota
        limit = quota.max_gpus_per_agent_deployment
        limit = quota.gpus if limit is None else limit
        if peak > limit:
            return (Reason.GPU_LIMIT_EXCEEDED,
                    f"spec.resources.gpus: {spec.resources.gpus} GPUs x {scale} replicas = {peak} exceeds "
                    f"Tenant {tenant.name}'s limit of {limit} GPUs per AgentDeployment; "
                    "lower spec.resources.gpus or the replica count")
        return None
    return check


def _route_is_ours(observed: Observed):
    def check(spec: AgentDeploymentSpec):
        if spec.traffic.gateway_ref is None or observed.route_foreign_owner is None:
            return None
        name = route_name(spec, observed.meta.name)
        return (Reason.HTTP_ROUTE_NOT_OWNED,
                f"spec.traffic.httpRoute: HTTPRoute {observed.meta.namespace}/{name} already exists and "
                f"belongs to {observed.route_foreign_owner}, not to this AgentDeployment; the operator "
                "never writes over it: name another route (or remove that one)")
    return check


def _gateway_exists(observed: Observed):
    def check(spec: AgentDeploymentSpec):
        ref = spec.traffic.gateway_ref
        if ref is None or observed.gateway_found is not False:
            return None
        return (Reason.GATEWAY_NOT_FOUND,
                f"spec.traffic.gatewayRef: Gateway {ref.namespace or observed.meta.namespace}/{ref.name} "
                "does not exist; nothing is routed until it does")
    return check


def _schema_parses(spec: AgentDeploymentSpec):
    detector = spec.guardrails.success_detector
    if detector.kind != DetectorKind.JSON_SCHEMA:
        return None
    try:
        parsed = json.loads(detector.schema_text or "")
    except ValueError as exc:
        return Reason.INVALID_SPEC, f"spec.guardrails.successDetector.schema: not valid JSON: {exc}"
    if not isinstance(parsed, dict):
        return Reason.INVALID_SPEC, "spec.guardrails.successDetector.schema: must be a JSON object"
    # The serving runtime refuses to start on a schema its dialect rejects: refuse it here, with
    # the runtime's own check, before every pod crash-loops on it.
    problem = schema_problem(parsed)
    if problem is not None:
        return (Reason.INVALID_SUCCESS_SCHEMA,
                f"spec.guardrails.successDetector.schema: invalid JSON Schema: {problem}")
    return None


def _deny_patterns_compile(spec: AgentDeploymentSpec):
    # The runtime refuses to start on a pattern it cannot compile: catch it here, before a pod
    # crash-loops on it.
    for index, pattern in enumerate(spec.guardrails.prompt_filter.deny_patterns):
        try:
            compile_deny_pattern(pattern)
        except DenyPatternError as exc:
            return (Reason.INVALID_DENY_PATTERN,
                    f"spec.guardrails.promptFilter.denyPatterns[{index}]: {pattern!r} is {exc}")
    return None


def _detector_pattern_compiles(spec: AgentDeploymentSpec):
    """The runtime compiles the Regex detector's pattern with Python's `re` at startup: a bad one
    would stop every pod, so it is refused here, with the same engine's words."""
    detector = spec.guardrails.success_detector
    if detector.kind != DetectorKind.REGEX:
        return None
    try:
        re.compile(detector.pattern or "")
    except re.error as exc:
        return (Reason.INVALID_SPEC, "spec.guardrails.successDetector.pattern: invalid regular "
                f"expression {detector.pattern!r}: {exc}")
    return None


def _fallback_servable(spec: AgentDeploymentSpec):
    # The runtime's SimpleModel fallback needs a second signed artifact (--fallback-artifact),
    # which the API has no field to name yet: pods told SimpleModel would never start.
    if spec.guardrails.fallback.mode == FallbackMode.SIMPLE_MODEL:
        return (Reason.INVALID_SPEC, "spec.guardrails.fallback.mode: SimpleModel needs a fallback model "
                "the operator cannot give the serving pods yet; use Refuse")
    return None


def artifact_dir(release: ReleaseView, config: ServingConfig) -> tuple[str | None, str]:
    """The directory serving pods read, or (None, why not): only file:// URIs under the shared
    artifact root (when one is mounted) are visible to them."""
    uri = release.artifact_uri or ""
    if not uri.startswith("file:///"):
        return None, f"release {release.name}: artifact {uri} is not a file:// URI serving can mount"
    path = uri.removeprefix("file://")
    root = config.artifact_root.rstrip("/") + "/"
    if config.artifact_pvc and not path.startswith(root):
        return None, (f"release {release.name}: artifact {path} is outside the artifact root "
                      f"{config.artifact_root} that serving pods mount")
    return path, ""


def _owner(meta: Meta) -> dict:
    return {"apiVersion": API_VERSION, "kind": AGENT_DEPLOYMENT.kind,
            "metadata": {"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}}


def _stop_serving(observed: Observed) -> tuple[tuple[str, str, str, str | None], ...]:
    """Delete what would serve or scale: nothing may keep serving a release no longer verified."""
    name, ns = serving_name(observed.meta.name), observed.meta.namespace
    out = []
    if observed.deployment is not None:
        out.append(("apps/v1", "Deployment", name, ns))
    if observed.canary_deployment is not None:
        out.append(("apps/v1", "Deployment", deployment_name(observed.meta.name, CANARY), ns))
    if observed.hpa_exists:
        out.append(("autoscaling/v2", "HorizontalPodAutoscaler", name, ns))
    return tuple(out)


REVOKED = "Revoked"
# A right the Tenant no longer grants (or no Tenant at all): the serving it allowed stops.
_REVOKED = frozenset({Reason.NAMESPACE_NOT_IN_TENANT, Reason.MODEL_LINE_NOT_ALLOWED,
                      Reason.NODE_POOL_NOT_ALLOWED, Reason.GPU_LIMIT_EXCEEDED})


def _revoked(observed: Observed, stop: Outcome) -> Outcome:
    """An invalid spec keeps what serves (fixing a typo loses nothing); a revoked right does not."""
    valid = next((c for c in stop.status.conditions if c.type == "Valid"), None)
    serving = _stop_serving(observed)
    if valid is None or valid.reason not in _REVOKED or not (serving or observed.status.phase == REVOKED):
        return stop
    status = stop.status.model_copy(update={
        "phase": REVOKED, "message": f"serving stopped: {valid.message}", "ready_replicas": 0,
        "release": None, "release_digest": None, "endpoint": None, "graph": None,
        "canary_release": None, "canary_weight": None, "canary_idle_since": None})
    return replace(stop, status=status, deletions=serving,
                   events=phase_event(observed.status, status, Reason(valid.reason), status.message))


def _waiting(observed: Observed, status: AgentDeploymentStatus, reason: Reason, message: str,
             now: datetime) -> Outcome:
    status = set_conditions(status, now, observed.meta.generation,
                            ("Ready", False, reason, message), ("Progressing", False, reason, message),
                            ("Degraded", False, reason, "nothing deployed"))
    status = status.model_copy(update={"phase": "Waiting", "message": message, "ready_replicas": 0,
                                       "release": None, "release_digest": None, "endpoint": None,
                                       "graph": None, "canary_release": None, "canary_weight": None,
                                       "canary_idle_since": None})
    return Outcome(status=status, deletions=_stop_serving(observed),
                   events=phase_event(observed.status, status, reason, message))


def derive_readiness(spec: AgentDeploymentSpec, release: ReleaseView,
                     dv: DeploymentView | None) -> tuple[str, bool, Reason, str]:
    """(phase, ready, reason, message) from what the Deployment reports."""
    if dv is not None and dv.failure:
        return "Degraded", False, Reason.REPLICA_FAILURE, f"pods cannot be created: {dv.failure}"
    desired = dv.replicas if spec.autoscaling.enabled and dv is not None else spec.replicas
    if desired == 0 and not spec.autoscaling.enabled:
        return "Idle", False, Reason.SCALED_TO_ZERO, "spec.replicas is 0: nothing serves"
    ready = dv.ready if dv is not None else 0
    # Rolled as `kubectl rollout status` means it: no pod of an older template is left, since
    # readyReplicas counts those too (mid-roll, an old pod still answers behind the Service).
    rolled = (dv is not None and dv.current and dv.release == release.name and dv.digest == release.digest
              and dv.updated >= desired and ready >= desired and dv.only_current_pods)
    if rolled:
        return "Serving", True, Reason.SERVING, f"{ready}/{desired} replicas serve release {release.name}"
    return "Deploying", False, Reason.DEPLOYING, (f"{ready}/{desired} replicas ready; rolling out "
                                                  f"release {release.name}")


@dataclass(frozen=True)
class CanaryPlan:
    """What the canary track does on this pass."""

    track: CanaryTrack | None = None  # the canary Deployment to apply (None: leave or delete it)
    weight: int = 0                   # the canary's share on the route
    release: str | None = None        # what status.canaryRelease shows
    idle_since: datetime | None = None
    delete: bool = False
    requeue_after: float | None = None
    note: str = ""


def _stable_replicas(spec: AgentDeploymentSpec, dv: DeploymentView | None) -> int:
    return dv.replicas if spec.autoscaling.enabled and dv is not None else spec.replicas


def _canary_context(ctx: ServingContext, release: ReleaseView, path: str, graph) -> ServingContext:
    return replace(ctx, release=ServingRelease(release.name, path, release.digest), graph=graph.graph,
                   graph_fallback=graph.fallback, track=CANARY)


def _canary_answers(cd: DeploymentView | None, release: ReleaseView) -> bool:
    """The canary Deployment has a ready pod, and every pod it has serves `release`. Not its
    observedGeneration: a step's new replica count must not take the weight back meanwhile."""
    return (cd is not None and cd.release == label_value(release.name)
            and cd.digest == release.digest and cd.ready >= 1 and cd.only_current_pods)


def plan_canary(observed: Observed, spec: AgentDeploymentSpec, tracks: Tracks, ctx: ServingContext,
                now: datetime) -> CanaryPlan:
    cd, dv, stable = observed.canary_deployment, observed.deployment, tracks.stable
    stable_n = _stable_replicas(spec, dv)
    note = ""
    if tracks.canary is not None and tracks.weight > 0:
        release = tracks.canary
        path, why = artifact_dir(release, observed.config)
        graph = plan_graph(spec, release.name, release.graphs, None)
        if path is not None and not graph.blocked:
            track = CanaryTrack(_canary_context(ctx, release, path, graph),
                                canary_replicas(stable_n, tracks.weight, tracks.mode), tracks.weight)
            if tracks.mode == TrafficMode.GATEWAY and not _canary_answers(cd, release):
                # A backend without ready endpoints answers 503 at the gateway (Gateway API), and
                # those errors never reach the runtime's metrics the analysis reads: the route
                # gives the canary its share once one of its pods is ready (the Deployment's
                # status wakes us then).
                return CanaryPlan(track, 0, release.name, note=f"canary {release.name} gets "
                                  f"{tracks.weight}% once one of its pods is ready")
            return CanaryPlan(track, tracks.weight, release.name)
        note = f"canary {release.name} cannot serve: {why or graph.blocked}"
    handing_over = (tracks.canary is None and cd is not None and cd.release == label_value(stable.name)
                    and derive_readiness(spec, stable, dv)[0] != "Serving" and stable_n > 0)
    if handing_over:
        # Just promoted: the canary already serves the release; it keeps the traffic until the
        # stable track has rolled to it, so nobody is sent back to the old release meanwhile.
        track = CanaryTrack(replace(ctx, track=CANARY), max(1, cd.replicas), 100)
        return CanaryPlan(track, 100, stable.name,
                          note=f"handing over: canary serves {stable.name} until the stable track does")
    if cd is None:
        return CanaryPlan(note=note)
    if tracks.mode == TrafficMode.REPLICA_RATIO:
        return CanaryPlan(delete=True, note=note)  # its pods are its share: they go at once
    since = observed.status.canary_idle_since or now
    left = CANARY_SCALE_DOWN_DELAY - (now - since).total_seconds()
    if left <= 0:
        return CanaryPlan(delete=True, note=note)
    return CanaryPlan(idle_since=since, requeue_after=left,
                      note=note or f"canary at weight 0: its pods go in {left:.0f}s")


def _route_gate(spec: AgentDeploymentSpec, meta: Meta, route: RouteStatus | None) -> tuple[RouteStatus, str]:
    """(what status.route shows, why traffic cannot flow yet or '')."""
    name = route_name(spec, meta.name)
    ref = spec.traffic.gateway_ref
    gateway = f"{ref.namespace or meta.namespace}/{ref.name}"
    shown = route if route is not None and route.name == name else RouteStatus(
        name=name, message="HTTPRoute not created yet")
    if shown.accepted:
        return shown, ""
    why = (f"HTTPRoute {name} not accepted by Gateway {gateway}: {shown.reason}: {shown.message}"
           if shown.accepted is False else f"HTTPRoute {name}: waiting for Gateway {gateway} to accept it "
           f"({shown.message})")
    return shown, why


def _routed(observed: Observed, spec: AgentDeploymentSpec, route: RouteStatus | None):
    """The Routed condition: which traffic mode is in use, and whether the gateway took the route."""
    if route is not None:
        ref = spec.traffic.gateway_ref
        on = f"HTTPRoute {route.name} on Gateway {ref.namespace or observed.meta.namespace}/{ref.name}"
        if route.accepted:
            return "Routed", True, Reason.ROUTE_ACCEPTED, f"{on}: accepted"
        why = ": ".join(x for x in (route.reason or "not accepted yet", route.message) if x)
        return "Routed", False, Reason.ROUTE_NOT_ACCEPTED, f"{on}: {why}"
    split = f"both tracks' pods behind Service {serving_name(observed.meta.name)}, traffic by replica ratio"
    if (observed.spec.get("traffic") or {}).get("gatewayRef") and not observed.gateway_api:
        return ("Routed", True, Reason.NO_GATEWAY_API,
                f"spec.traffic.gatewayRef ignored: the cluster serves no Gateway API HTTPRoute; {split}")
    return "Routed", True, Reason.REPLICA_RATIO, split


def _track_events(old: AgentDeploymentStatus, new: AgentDeploymentStatus,
                  releases: tuple[ReleaseView, ...]) -> tuple[EventIntent, ...]:
    out = []
    if old.stable_release and new.stable_release and old.stable_release != new.stable_release:
        out.append(EventIntent("Normal", Reason.TARGET_PROMOTED,
                               f"stable track: {old.stable_release} -> {new.stable_release}"))
    # Once it takes traffic: a canary whose pods are still starting gets no share yet.
    if new.canary_release and new.canary_weight and new.canary_release != new.stable_release \
            and (new.canary_release != old.canary_release or not old.canary_weight):
        out.append(EventIntent("Normal", Reason.ROLLOUT_PROGRESSING,
                               f"canary track serves {new.canary_release} at {new.canary_weight}%"))
    gone = old.canary_release if old.canary_release and not new.canary_release else None
    plan = next((r.plan for r in releases if r.name == gone and r.plan is not None), None)
    if plan is not None and plan.state == TargetState.ROLLED_BACK:
        out.append(EventIntent("Warning", Reason.ROLLED_BACK,
                               f"canary {gone} rolled back: weight 0, stable {new.stable_release} "
                               f"untouched; {plan.message}"))
    return tuple(out)


def _serving(observed: Observed, spec: AgentDeploymentSpec, status: AgentDeploymentStatus,
             tracks: Tracks, path: str, now: datetime) -> Outcome:
    meta, cfg, tenant, release = observed.meta, observed.config, observed.tenant, tracks.stable
    graph = plan_graph(spec, release.name, release.graphs, observed.served_graphs)
    if graph.blocked:
        return _waiting(observed, status, Reason.GRAPH_NOT_PUBLISHED, graph.blocked, now)
    ctx = ServingContext(owner=_owner(meta), tenant=tenant.name, tenant_spec=tenant.spec,
                         release=ServingRelease(release.name, path, release.digest),
                         trust_pem=observed.trust_pem, config=cfg, graph=graph.graph,
                         graph_fallback=graph.fallback, track=STABLE)
    canary = plan_canary(observed, spec, tracks, ctx, now)
    phase, ready, reason, message = derive_readiness(spec, release, observed.deployment)
    route = None
    if tracks.mode == TrafficMode.GATEWAY:
        route, blocked = _route_gate(spec, meta, observed.route)
        if blocked and phase == "Serving":
            phase, ready, reason, message = "Deploying", False, Reason.ROUTE_NOT_ACCEPTED, blocked
    cd = observed.canary_deployment
    if canary.track is not None:
        message += (f"; canary {canary.release} at {canary.weight}% "
                    f"({cd.ready if cd is not None else 0}/{canary.track.replicas} ready)")
    if canary.note:
        message += f"; {canary.note}"
    status = set_conditions(status, now, meta.generation, _routed(observed, spec, route),
                            ("Ready", ready, reason, message),
                            ("Progressing", phase == "Deploying", reason, message),
                            ("Degraded", phase == "Degraded", reason,
                             message if phase == "Degraded" else "no pod-creation failures"))
    dv = observed.deployment
    status = status.model_copy(update={
        "phase": phase, "message": message,
        "ready_replicas": dv.ready if dv is not None else 0, "release": release.name,
        "release_digest": release.digest, "endpoint": endpoint(meta.name, meta.namespace, cfg),
        "graph": graph.status, "stable_release": release.name,
        "canary_release": canary.release if canary.track is not None else None,
        "canary_weight": canary.weight, "canary_idle_since": canary.idle_since,
        "traffic": tracks.mode, "route": route})
    deletions = []
    if observed.hpa_exists and not spec.autoscaling.enabled:
        deletions.append(("autoscaling/v2", "HorizontalPodAutoscaler", serving_name(meta.name),
                          meta.namespace))
    if canary.delete:
        deletions.append(("apps/v1", "Deployment", deployment_name(meta.name, CANARY), meta.namespace))
    # Prometheus sends no events: look again until every pod has reported the graph it serves.
    counted = sum((observed.served_graphs or {}).values())
    unreported = observed.served_graphs is not None and counted < (status.ready_replicas or 0)
    waits = [w for w in (GRAPH_POLL_SECONDS if unreported else None, canary.requeue_after) if w is not None]
    return Outcome(status=status, children=build_serving_objects(spec, ctx, canary.track, canary.weight),
                   deletions=tuple(deletions), requeue_after=min(waits, default=None),
                   events=phase_event(observed.status, status, reason, message)
                   + _track_events(observed.status, status, observed.releases))


def decide(observed: Observed, now: datetime) -> Outcome:
    return with_budget_store(_decide(observed, now), observed.status.conditions, observed.budget_store,
                             observed.tenant, observed.meta.generation, now)


def _decide(observed: Observed, now: datetime) -> Outcome:
    meta, old, raw = observed.meta, observed.status, observed.spec or {}
    tenant = observed.tenant
    checks = [require_tenant(tenant, meta.namespace, required=True),
              model_line_allowed(tenant, raw.get("modelLine", "")),
              node_pool_allowed(tenant, raw.get("nodePool", "cpu"), "spec.nodePool"),
              _gpus_within_limit(tenant), _schema_parses, _deny_patterns_compile,
              _detector_pattern_compiles, _fallback_servable,
              _gateway_exists(observed), _route_is_ours(observed)]
    spec, status, stop = validate(meta, AGENT_DEPLOYMENT.spec, raw, old, checks, now)
    if stop is not None:
        return _revoked(observed, stop)
    if spec.traffic.gateway_ref is not None and not observed.gateway_api:
        # Said in the Routed condition: the same spec serves on clusters with and without a gateway.
        spec = spec.model_copy(update={"traffic": spec.traffic.model_copy(update={"gateway_ref": None})})
    tracks = tracks_for(spec, tenant, observed.releases, old.stable_release)
    if tracks.stable is None:
        return _waiting(observed, status, Reason.NO_VERIFIED_RELEASE, tracks.message, now)
    path, why = artifact_dir(tracks.stable, observed.config)
    if path is None:
        return _waiting(observed, status, Reason.ARTIFACT_NOT_SERVABLE, why, now)
    if not observed.trust_pem:
        return _waiting(observed, status, Reason.NO_TRUSTED_KEY,
                        f"no trusted public key: ConfigMap {observed.trust_source} with key public.pem "
                        "is missing; the platform team must create it", now)
    problem = key_problem(observed.trust_pem)
    if problem is not None:
        # Pods given this key could verify nothing: they would crash-loop, so none is desired.
        return _waiting(observed, status, Reason.INVALID_TRUSTED_KEY,
                        f"trusted key in ConfigMap {observed.trust_source}: {problem}; the platform team "
                        "must fix it", now)
    return _serving(observed, spec, status, tracks, path, now)
