"""AgentDeployment: judge the spec against its Tenant, pick the verified release to serve, desire
the serving objects, and report readiness. Pure.

Decides validity (tenant, model line, node pool, GPU limit, detector schema), which release is
served (the deployment's pin, else the tenant's pin for this line, else the newest verified
release whose phase is Ready or Promoted) and the status. Never serves anything unverified:
without a verified release or a trusted key no Deployment is desired and an existing one is
deleted. Must not read the cluster or the clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ..api.agent_deployment import AgentDeploymentSpec, AgentDeploymentStatus, DetectorKind
from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT
from ..builders.agent_deployment import (
    ServingConfig,
    ServingContext,
    ServingRelease,
    build_serving_objects,
    endpoint,
    serving_name,
)
from ..reasons import Reason
from .outcome import Meta, Outcome, phase_event, set_conditions
from .serving_graph import PublishedGraph, plan_graph
from .tenancy import TenantView, model_line_allowed, node_pool_allowed, require_tenant
from .validity import validate

SERVABLE_PHASES = ("Ready", "Promoted")
GRAPH_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class ReleaseView:
    """A ModelRelease as serving sees it."""

    name: str
    namespace: str
    model_line: str
    verified: bool
    phase: str | None
    artifact_uri: str | None
    digest: str | None
    created: str  # RFC 3339, so it sorts by time
    graphs: tuple[PublishedGraph, ...] = ()


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


def summarize_release(obj: dict) -> ReleaseView:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    verified = any(c.get("type") == "Verified" and c.get("status") == "True"
                   for c in status.get("conditions") or [])
    graphs = tuple(PublishedGraph(g.get("name", ""), bool(g.get("published")), g.get("reason"))
                   for g in status.get("graphs") or [] if isinstance(g, dict))
    return ReleaseView(meta["name"], meta.get("namespace") or "", spec.get("modelLine", ""), verified,
                       status.get("phase"), status.get("artifactUri"), status.get("manifestDigest"),
                       meta.get("creationTimestamp") or "", graphs)


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
        failure=failure)


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
    return None


def _pin(spec: AgentDeploymentSpec, tenant: TenantView, releases: tuple[ReleaseView, ...]) -> str | None:
    """The deployment's own pin wins; the tenant's pin counts only for releases of this line."""
    if spec.release:
        return spec.release
    pinned = tenant.spec.rollout.pinned_release
    if pinned and any(r.name == pinned and r.model_line == spec.model_line for r in releases):
        return pinned
    return None


def choose_release(spec: AgentDeploymentSpec, tenant: TenantView,
                   releases: tuple[ReleaseView, ...]) -> tuple[ReleaseView | None, str]:
    """(release, '') or (None, why nothing can be served)."""
    usable = [r for r in releases if r.model_line == spec.model_line and r.verified
              and r.artifact_uri and r.digest]
    pin = _pin(spec, tenant, releases)
    if pin:
        match = sorted((r for r in usable if r.name == pin), key=lambda r: r.namespace)
        if match:
            return match[0], ""
        return None, (f"pinned release {pin} of model line {spec.model_line} is not verified "
                      "(or does not exist); waiting for it to be verified")
    ready = [r for r in usable if r.phase in SERVABLE_PHASES]
    if not ready:
        return None, (f"model line {spec.model_line} has no verified release in phase "
                      f"{' or '.join(SERVABLE_PHASES)} yet; nothing unverified is ever served")
    return max(ready, key=lambda r: (r.created, r.name)), ""


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
    if observed.hpa_exists:
        out.append(("autoscaling/v2", "HorizontalPodAutoscaler", name, ns))
    return tuple(out)


def _waiting(observed: Observed, status: AgentDeploymentStatus, reason: Reason, message: str,
             now: datetime) -> Outcome:
    status = set_conditions(status, now, observed.meta.generation,
                            ("Ready", False, reason, message), ("Progressing", False, reason, message),
                            ("Degraded", False, reason, "nothing deployed"))
    status = status.model_copy(update={"phase": "Waiting", "message": message, "ready_replicas": 0,
                                       "release": None, "release_digest": None, "endpoint": None,
                                       "graph": None})
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
    rolled = (dv is not None and dv.current and dv.release == release.name and dv.digest == release.digest
              and dv.updated >= desired and ready >= desired)
    if rolled:
        return "Serving", True, Reason.SERVING, f"{ready}/{desired} replicas serve release {release.name}"
    return "Deploying", False, Reason.DEPLOYING, (f"{ready}/{desired} replicas ready; rolling out "
                                                  f"release {release.name}")


def _serving(observed: Observed, spec: AgentDeploymentSpec, status: AgentDeploymentStatus,
             release: ReleaseView, path: str, now: datetime) -> Outcome:
    meta, cfg, tenant = observed.meta, observed.config, observed.tenant
    graph = plan_graph(spec, release.name, release.graphs, observed.served_graphs)
    if graph.blocked:
        return _waiting(observed, status, Reason.GRAPH_NOT_PUBLISHED, graph.blocked, now)
    ctx = ServingContext(owner=_owner(meta), tenant=tenant.name, tenant_spec=tenant.spec,
                         release=ServingRelease(release.name, path, release.digest),
                         trust_pem=observed.trust_pem, config=cfg, graph=graph.graph,
                         graph_fallback=graph.fallback)
    phase, ready, reason, message = derive_readiness(spec, release, observed.deployment)
    status = set_conditions(status, now, meta.generation,
                            ("Ready", ready, reason, message),
                            ("Progressing", phase == "Deploying", reason, message),
                            ("Degraded", phase == "Degraded", reason,
                             message if phase == "Degraded" else "no pod-creation failures"))
    dv = observed.deployment
    status = status.model_copy(update={
        "phase": phase, "message": message,
        "ready_replicas": dv.ready if dv is not None else 0, "release": release.name,
        "release_digest": release.digest, "endpoint": endpoint(meta.name, meta.namespace, cfg),
        "graph": graph.status})
    deletions = ()
    if observed.hpa_exists and not spec.autoscaling.enabled:
        deletions = (("autoscaling/v2", "HorizontalPodAutoscaler", serving_name(meta.name), meta.namespace),)
    # Prometheus sends no events: look again until every pod has reported the graph it serves.
    counted = sum((observed.served_graphs or {}).values())
    unreported = observed.served_graphs is not None and counted < (status.ready_replicas or 0)
    requeue = GRAPH_POLL_SECONDS if unreported else None
    return Outcome(status=status, children=build_serving_objects(spec, ctx), deletions=deletions,
                   events=phase_event(observed.status, status, reason, message), requeue_after=requeue)


def decide(observed: Observed, now: datetime) -> Outcome:
    meta, old, raw = observed.meta, observed.status, observed.spec or {}
    tenant = observed.tenant
    checks = [require_tenant(tenant, meta.namespace, required=True),
              model_line_allowed(tenant, raw.get("modelLine", "")),
              node_pool_allowed(tenant, raw.get("nodePool", "cpu"), "spec.nodePool"),
              _gpus_within_limit(tenant), _schema_parses]
    spec, status, stop = validate(meta, AGENT_DEPLOYMENT.spec, raw, old, checks, now)
    if stop is not None:
        return stop
    release, why = choose_release(spec, tenant, observed.releases)
    if release is None:
        return _waiting(observed, status, Reason.NO_VERIFIED_RELEASE, why, now)
    path, why = artifact_dir(release, observed.config)
    if path is None:
        return _waiting(observed, status, Reason.ARTIFACT_NOT_SERVABLE, why, now)
    if not observed.trust_pem:
        return _waiting(observed, status, Reason.NO_TRUSTED_KEY,
                        f"no trusted public key: ConfigMap {observed.trust_source} with key public.pem "
                        "is missing; the platform team must create it", now)
    return _serving(observed, spec, status, release, path, now)
