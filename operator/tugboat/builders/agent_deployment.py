"""AgentDeployment -> its serving objects: ServiceAccount, guardrails and trust ConfigMaps, one
Deployment of the serving runtime per track (stable, and canary during a rollout), a Service over
both tracks plus one per track, the HTTPRoute weighting them, HPA, PodDisruptionBudget and
NetworkPolicy. Pure.

Decides names, labels, canary replicas from the weight, the hardened pod (non-root, read-only
root filesystem, no privilege escalation, seccomp RuntimeDefault, all capabilities dropped, no
service account token), the runtime's flags per track and the guardrails document. Every
object is owned by the AgentDeployment, so the garbage collector removes them with it. Must not
choose releases or read the cluster: the caller passes verified releases, the canary weight
and the trusted key in.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..api.agent_deployment import AgentDeploymentSpec, DetectorKind, TrafficMode
from ..api.base import GROUP, PermissionLevel
from ..api.tenant import TenantSpec
from .naming import child_name, label_value, managed_labels, owner_reference
from .tenant import GPU_RESOURCE, TENANT_LABEL, from_namespaces

PORT = 8080
GATEWAY_API = "gateway.networking.k8s.io/v1"
STABLE, CANARY = "stable", "canary"
MAX_REPLICAS = 1000  # the spec's own limit
SERVICE_PORT = 80
TRUST_DIR = "/etc/tugboat/trust"
GUARDRAILS_DIR = "/etc/tugboat/guardrails"
GUARDRAILS_FILE = "guardrails.json"
PUBLIC_KEY_FILE = "public.pem"
AUDIT_KEY_DIR = "/etc/tugboat/audit-key"
AUDIT_KEY_FILE = "key"  # the key in the tenant's audit key Secret
API_KEYS_DIR = "/etc/tugboat/api-keys"
API_KEYS_FILE = "keys.json"  # the key in the tenant's API keys Secret (hashes, never keys)
BUDGET_STORE_ENV = "TUGBOAT_BUDGET_STORE"  # the runtime's --budget-store, as its env var
REDIS_PORT = 6379
# A fixed non-root identity, so runAsNonRoot holds whatever USER the image declares.
RUN_AS = 65532
_LEVELS = [PermissionLevel.READ_ONLY, PermissionLevel.STANDARD, PermissionLevel.ELEVATED]


@dataclass(frozen=True)
class ServingConfig:
    """Cluster configuration the serving objects depend on (from the operator's Settings)."""

    image: str
    pool_label: str
    artifact_root: str
    artifact_pvc: str | None
    gateway_namespace: str
    monitoring_namespace: str
    cluster_domain: str = "cluster.local"
    # Secret in the tenant namespace holding the audit HMAC key (data key AUDIT_KEY_FILE).
    audit_key_secret: str = "tugboat-audit-key"
    # Secret in the tenant namespace listing its callers' API key hashes (data key API_KEYS_FILE).
    api_keys_secret: str = "tugboat-api-keys"
    # redis:// URL of the shared token budget counter; None: each pod counts its own windows.
    budget_store: str | None = None


@dataclass(frozen=True)
class ServingRelease:
    """A verified release: its name, artifact directory and signed-manifest digest."""

    name: str
    artifact_dir: str
    digest: str


@dataclass(frozen=True)
class ServingContext:
    owner: dict  # the AgentDeployment (apiVersion, kind, metadata.name/namespace/uid)
    tenant: str
    tenant_spec: TenantSpec
    release: ServingRelease
    trust_pem: str
    config: ServingConfig
    graph: str = "fp32"           # --graph: the runtime re-checks it with the numerics probe
    graph_fallback: bool = False  # --graph-fallback: fp32 when the probe fails on the node
    track: str = STABLE           # --track, the pods' track label and which Deployment this is


def serving_name(agent: str) -> str:
    """Deployment, Service, HPA, PDB, ServiceAccount and NetworkPolicy share this name."""
    return child_name(agent, "serve")


def deployment_name(agent: str, track: str) -> str:
    # The stable track keeps the name the single Deployment always had: upgrades roll it in place.
    return serving_name(agent) if track == STABLE else child_name(agent, CANARY)


def track_service_name(agent: str, track: str) -> str:
    return child_name(agent, track)


def route_name(spec: AgentDeploymentSpec, agent: str) -> str:
    return spec.traffic.http_route or agent


def guardrails_name(agent: str) -> str:
    return child_name(agent, "guardrails")


def trust_name(agent: str) -> str:
    return child_name(agent, "trust")


def endpoint(agent: str, namespace: str, config: ServingConfig) -> str:
    return f"http://{serving_name(agent)}.{namespace}.svc.{config.cluster_domain}"


def permission_level(tenant: PermissionLevel | str, agent: PermissionLevel | str) -> str:
    """The stricter of the tenant's ceiling and the deployment's wish."""
    return str(_LEVELS[min(_LEVELS.index(PermissionLevel(tenant)), _LEVELS.index(PermissionLevel(agent)))])


def _detector(spec: AgentDeploymentSpec) -> dict:
    d = spec.guardrails.success_detector
    out: dict = {"kind": str(d.kind)}
    if d.kind == DetectorKind.REGEX:
        out["pattern"] = d.pattern
    elif d.kind == DetectorKind.JSON_SCHEMA:
        out["schema"] = json.loads(d.schema_text or "null")
    elif d.kind == DetectorKind.REFERENCE:
        out.update(reference=d.reference, match=str(d.match))
    return out


def build_guardrails(spec: AgentDeploymentSpec, tenant: TenantSpec) -> dict:
    """The serving runtime's guardrails JSON: the deployment's rules under the tenant's limits."""
    g = spec.guardrails
    return {
        "promptFilter": {"denyPatterns": list(g.prompt_filter.deny_patterns),
                         "maxPromptChars": g.prompt_filter.max_prompt_chars},
        "tokenBudget": {"tokensPerWindow": tenant.token_budget.tokens_per_window,
                        "windowSeconds": tenant.token_budget.window_seconds,
                        "onStoreUnavailable": str(tenant.token_budget.on_store_unavailable)},
        "tools": {"allowed": sorted(g.tools.allowed)},
        "fallback": {"minConfidence": g.fallback.min_confidence, "mode": str(g.fallback.mode)},
        "permissionLevel": permission_level(tenant.permission_level, g.permission_level),
        "costCenter": tenant.cost_center,
        "successDetector": _detector(spec),
    }


def _guardrails_text(spec: AgentDeploymentSpec, ctx: ServingContext) -> str:
    return json.dumps(build_guardrails(spec, ctx.tenant_spec), indent=2, sort_keys=True)


def selector_labels(agent: str) -> dict[str, str]:
    """What the Service (and PDB, NetworkPolicy) select: every pod of this agent, any track."""
    return {"app.kubernetes.io/name": "tugboat-serve", "app.kubernetes.io/instance": label_value(agent)}


def _labels(ctx: ServingContext) -> dict[str, str]:
    meta = ctx.owner["metadata"]
    return managed_labels(**selector_labels(meta["name"]), **{
        f"{GROUP}/agent-deployment": label_value(meta["name"]), TENANT_LABEL: label_value(ctx.tenant)})


def _meta(name: str, ctx: ServingContext, **extra_labels: str) -> dict:
    return {"name": name, "namespace": ctx.owner["metadata"]["namespace"],
            "labels": {**_labels(ctx), **extra_labels}, "ownerReferences": [owner_reference(ctx.owner)]}


def build_service_account(ctx: ServingContext) -> dict:
    # Serving needs no API access: no token is mounted into its pods at all.
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(serving_name(ctx.owner["metadata"]["name"]), ctx),
            "automountServiceAccountToken": False}


def build_guardrails_config_map(spec: AgentDeploymentSpec, ctx: ServingContext) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(guardrails_name(ctx.owner["metadata"]["name"]), ctx),
            "data": {GUARDRAILS_FILE: _guardrails_text(spec, ctx)}}


def build_trust_config_map(ctx: ServingContext) -> dict:
    """A copy of the cluster's trusted key: pods mount ConfigMaps of their own namespace only."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(trust_name(ctx.owner["metadata"]["name"]), ctx),
            "data": {PUBLIC_KEY_FILE: ctx.trust_pem}}


def budget_store_port(url: str) -> int:
    return urlsplit(url).port or REDIS_PORT


def check_budget_store(url: str) -> None:
    """Raise ValueError unless `url` is a redis:// or rediss:// URL with a host (and valid port)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"budget store must be redis://HOST[:PORT][/DB] or rediss://..., got {url!r}")
    budget_store_port(url)  # urlsplit raises ValueError for a port out of range


def runtime_args(ctx: ServingContext) -> list[str]:
    """Flags of `python -m tugboat_workloads.serve` (its settings module names them)."""
    meta = ctx.owner["metadata"]
    return ["--artifact", ctx.release.artifact_dir,
            "--public-key", f"{TRUST_DIR}/{PUBLIC_KEY_FILE}",
            "--guardrails", f"{GUARDRAILS_DIR}/{GUARDRAILS_FILE}",
            "--audit-key-file", f"{AUDIT_KEY_DIR}/{AUDIT_KEY_FILE}",
            "--api-keys-file", f"{API_KEYS_DIR}/{API_KEYS_FILE}",
            "--release", ctx.release.name, "--track", ctx.track,
            "--tenant", ctx.tenant, "--agent-deployment", meta["name"],
            "--host", "0.0.0.0", "--port", str(PORT),
            "--graph", ctx.graph, *(["--graph-fallback"] if ctx.graph_fallback else [])]


def _resources(spec: AgentDeploymentSpec) -> dict:
    # requests == limits: serving gets the Guaranteed QoS class and counts exactly in the quota.
    amounts = {"cpu": spec.resources.cpu, "memory": spec.resources.memory}
    if spec.resources.gpus:
        amounts[GPU_RESOURCE] = str(spec.resources.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _volumes(ctx: ServingContext) -> list[tuple[dict, dict]]:
    """(volume, mount) pairs: guardrails, trusted key, audit key, API keys, a scratch /tmp, and
    the artifact store."""
    agent = ctx.owner["metadata"]["name"]
    pairs = [
        ({"name": "guardrails", "configMap": {"name": guardrails_name(agent)}},
         {"name": "guardrails", "mountPath": GUARDRAILS_DIR, "readOnly": True}),
        ({"name": "trust", "configMap": {"name": trust_name(agent)}},
         {"name": "trust", "mountPath": TRUST_DIR, "readOnly": True}),
        # Optional: until the tenant's Secret exists the runtime audits under a per-process key
        # (and says so) rather than the pod waiting; group-readable through fsGroup, no further.
        ({"name": "audit-key", "secret": {"secretName": ctx.config.audit_key_secret, "optional": True,
                                          "defaultMode": 0o440,
                                          "items": [{"key": AUDIT_KEY_FILE, "path": AUDIT_KEY_FILE}]}},
         {"name": "audit-key", "mountPath": AUDIT_KEY_DIR, "readOnly": True}),
        # Optional too: without the Secret the runtime answers every request 401 (fail closed)
        # and the pod is still there to say why.
        ({"name": "api-keys", "secret": {"secretName": ctx.config.api_keys_secret, "optional": True,
                                         "defaultMode": 0o440,
                                         "items": [{"key": API_KEYS_FILE, "path": API_KEYS_FILE}]}},
         {"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True}),
        # The root filesystem is read-only; Python and ONNX Runtime still want a writable /tmp.
        ({"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}, {"name": "tmp", "mountPath": "/tmp"}),
    ]
    if ctx.config.artifact_pvc:
        pairs.append(({"name": "artifacts", "persistentVolumeClaim": {
                           "claimName": ctx.config.artifact_pvc, "readOnly": True}},
                      {"name": "artifacts", "mountPath": ctx.config.artifact_root, "readOnly": True}))
    return pairs


def _container(spec: AgentDeploymentSpec, ctx: ServingContext, mounts: list[dict]) -> dict:
    return {
        "name": "serve",
        "image": ctx.config.image,
        "command": ["python", "-m", "tugboat_workloads.serve"],
        "args": runtime_args(ctx),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        # A refused artifact or graph says why in its last log line; the status shows it.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                           "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                          "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 3},
        "resources": _resources(spec),
        "securityContext": {
            "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
        # An env var rather than a flag: the URL may carry a password, kept out of `ps` output.
        **({"env": [{"name": BUDGET_STORE_ENV, "value": ctx.config.budget_store}]}
           if ctx.config.budget_store else {}),
    }


def _config_hash(spec: AgentDeploymentSpec, ctx: ServingContext) -> str:
    # In the pod template, so a guardrails or trusted-key change rolls the pods.
    text = _guardrails_text(spec, ctx) + ctx.trust_pem
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_pod_template(spec: AgentDeploymentSpec, ctx: ServingContext) -> dict:
    pairs = _volumes(ctx)
    tolerations = ([{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
                   if spec.resources.gpus else [])
    labels = {**_labels(ctx), "tugboat.dev/workload": "serve", "tugboat.dev/track": ctx.track,
              "tugboat.dev/release": label_value(ctx.release.name)}
    annotations = {"tugboat.dev/config-hash": _config_hash(spec, ctx),
                   "tugboat.dev/manifest-digest": ctx.release.digest,
                   "prometheus.io/scrape": "true", "prometheus.io/port": str(PORT),
                   "prometheus.io/path": "/metrics"}
    return {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {
            "serviceAccountName": serving_name(ctx.owner["metadata"]["name"]),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "nodeSelector": {ctx.config.pool_label: spec.node_pool},
            "tolerations": tolerations,
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container(spec, ctx, [m for _, m in pairs])],
            "volumes": [v for v, _ in pairs],
        },
    }


def track_selector(agent: str, track: str) -> dict[str, str]:
    return {**selector_labels(agent), "tugboat.dev/track": track}


def canary_replicas(stable: int, weight: int, mode: TrafficMode) -> int:
    """Canary pods for `weight`% of the traffic next to `stable` fully scaled stable pods.

    Through a gateway the weight splits the traffic, so the canary needs that share of the
    capacity; by replica ratio the pod counts are the split, so canary/(stable+canary) = weight.
    At least one pod while the weight is above 0 (a canary that serves nothing proves nothing).
    """
    if weight <= 0 or stable <= 0:
        return 0
    if mode == TrafficMode.GATEWAY or weight >= 100:
        wanted = math.ceil(stable * weight / 100)
    else:
        wanted = round(stable * weight / (100 - weight))
    return max(1, min(MAX_REPLICAS, wanted))


def build_deployment(spec: AgentDeploymentSpec, ctx: ServingContext, replicas: int | None = None) -> dict:
    """`replicas`: the canary's count; the stable track follows the spec (or the HPA)."""
    agent = ctx.owner["metadata"]["name"]
    deployment_spec: dict = {
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": track_selector(agent, ctx.track)},
        # Surge first: a release change never drops below the ready replicas already serving.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": build_pod_template(spec, ctx),
    }
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    elif not spec.autoscaling.enabled:
        # With autoscaling the HPA owns the replica count; declaring it would fight the HPA.
        deployment_spec["replicas"] = spec.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(deployment_name(agent, ctx.track), ctx, **{
                "tugboat.dev/release": label_value(ctx.release.name), "tugboat.dev/track": ctx.track}),
            "spec": deployment_spec}


def _service(name: str, selector: dict[str, str], ctx: ServingContext) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ctx),
            "spec": {"type": "ClusterIP", "selector": selector,
                     "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http",
                                "protocol": "TCP"}]}}


def build_service(ctx: ServingContext) -> dict:
    """Every pod of every track: the endpoint, and the split by replica ratio without a gateway."""
    agent = ctx.owner["metadata"]["name"]
    return _service(serving_name(agent), selector_labels(agent), ctx)


def build_track_service(ctx: ServingContext, track: str) -> dict:
    """One track's pods only: what the HTTPRoute weights."""
    agent = ctx.owner["metadata"]["name"]
    return _service(track_service_name(agent, track), track_selector(agent, track), ctx)


def build_http_route(spec: AgentDeploymentSpec, ctx: ServingContext, weight: int) -> dict:
    """Weighted backendRefs to both track Services; the canary's is there at weight 0 too, so a
    weight change is one field, never a new backend."""
    agent, ref = ctx.owner["metadata"]["name"], spec.traffic.gateway_ref
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name,
              "namespace": ref.namespace or ctx.owner["metadata"]["namespace"]}
    if ref.section_name:
        parent["sectionName"] = ref.section_name
    route_spec: dict = {"parentRefs": [parent], "rules": [{"backendRefs": [
        {"group": "", "kind": "Service", "name": track_service_name(agent, track), "port": SERVICE_PORT,
         "weight": w} for track, w in ((STABLE, 100 - weight), (CANARY, weight))]}]}
    if spec.traffic.hostnames:
        route_spec["hostnames"] = list(spec.traffic.hostnames)
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute", "metadata": _meta(route_name(spec, agent), ctx),
            "spec": route_spec}


def build_hpa(spec: AgentDeploymentSpec, ctx: ServingContext) -> dict:
    agent = ctx.owner["metadata"]["name"]
    a = spec.autoscaling
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(serving_name(agent), ctx),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": serving_name(agent)},
                     "minReplicas": a.min_replicas, "maxReplicas": a.max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": a.target_cpu_utilization}}}]}}


def build_pdb(ctx: ServingContext) -> dict:
    agent = ctx.owner["metadata"]["name"]
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": _meta(serving_name(agent), ctx),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(agent)}}}


def build_network_policy(spec: AgentDeploymentSpec, ctx: ServingContext) -> dict:
    """Only the gateway (and Prometheus) reach the runtime; it reaches nothing but DNS (and the
    budget store's port when there is one). The
    gateway's namespace is the one of the Gateway named in spec.traffic.gatewayRef, if any (a
    gateway implementation runs its data plane beside its Gateway), and the platform's."""
    agent, cfg = ctx.owner["metadata"]["name"], ctx.config
    ref = spec.traffic.gateway_ref
    sources = [cfg.gateway_namespace, cfg.monitoring_namespace]
    if ref is not None and (ref.namespace or ctx.owner["metadata"]["namespace"]) not in sources:
        sources.append(ref.namespace or ctx.owner["metadata"]["namespace"])
    dns = [{"protocol": proto, "port": 53} for proto in ("UDP", "TCP")]
    egress = [{"ports": dns}]
    if cfg.budget_store:
        egress.append({"ports": [{"protocol": "TCP", "port": budget_store_port(cfg.budget_store)}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(serving_name(agent), ctx),
            "spec": {"podSelector": {"matchLabels": selector_labels(agent)},
                     "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": from_namespaces(*sources),
                                  "ports": [{"protocol": "TCP", "port": PORT}]}],
                     "egress": egress}}


@dataclass(frozen=True)
class CanaryTrack:
    """The canary's context (its release, track canary), pod count and traffic share."""

    ctx: ServingContext
    replicas: int
    weight: int


def build_serving_objects(spec: AgentDeploymentSpec, ctx: ServingContext, canary: CanaryTrack | None = None,
                          weight: int = 0) -> tuple[dict, ...]:
    """Everything to apply, in order: what the pods mount and the Services before the Deployments,
    the HTTPRoute last (its backends exist by then). `weight`: the canary's share on the route,
    also when the canary Deployment is left alone (weight 0 while it waits to be scaled down)."""
    out = [build_service_account(ctx), build_guardrails_config_map(spec, ctx),
           build_trust_config_map(ctx), build_service(ctx), build_track_service(ctx, STABLE),
           build_track_service(ctx, CANARY), build_network_policy(spec, ctx), build_pdb(ctx),
           build_deployment(spec, ctx)]
    if canary is not None:
        out.append(build_deployment(spec, canary.ctx, canary.replicas))
    if spec.autoscaling.enabled:
        out.append(build_hpa(spec, ctx))
    if spec.traffic.gateway_ref is not None:
        out.append(build_http_route(spec, ctx, weight))
    return tuple(out)
