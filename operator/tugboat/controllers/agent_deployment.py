"""AgentDeployment: gather the Tenant, the model line's releases (with their rollout plans for
this deployment), the trusted key, our two track Deployments, with a gateway our HTTPRoute, and
whether the shared budget store answers, for the pure decision."""

from __future__ import annotations

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE
from ..builders.agent_deployment import (
    CANARY,
    GATEWAY_API,
    ServingConfig,
    deployment_name,
    route_name,
    serving_name,
)
from ..kube.client import Kube
from ..reconcile import agent_deployment as agd
from ..reconcile.outcome import Meta
from .budget_store import PROBER
from .engine import current_status
from .gather import tenant_of_namespace
from .indexes import MODEL_LINE, lookup
from .model_release import TRUST_CONFIGMAP, trusted_public_key
from .rollout_gather import may_reach
from .served_graphs import served_graphs
from .settings import Settings


def serving_config(s: Settings) -> ServingConfig:
    return ServingConfig(image=s.serving_image, pool_label=s.pool_label, artifact_root=s.artifact_root,
                         artifact_pvc=s.artifact_pvc, gateway_namespace=s.gateway_namespace,
                         monitoring_namespace=s.monitoring_namespace, cluster_domain=s.cluster_domain,
                         audit_key_secret=s.audit_key_secret, api_keys_secret=s.api_keys_secret,
                         budget_store=s.budget_store)


def releases_of_line(kube: Kube, line: str, target: tuple[str, str],
                     s: Settings) -> tuple[agd.ReleaseView, ...]:
    """The line's releases that may serve the AgentDeployment `target` (namespace, name), with their
    rollout plans for it: those of its own namespace and of the platform's release namespaces. A
    release another tenant made in its namespace is never a candidate here, however new."""
    return tuple(agd.summarize_release(r, target) for r in lookup(kube, MODEL_RELEASE.kind, MODEL_LINE, line)
                 if may_reach(r["metadata"]["namespace"], target[0], s))


def _traffic(kube: Kube, obj: dict) -> dict:
    """What the spec's gatewayRef finds: whether the cluster serves HTTPRoutes, whether the Gateway
    exists, our route's acceptance, or the owner of a route of that name that is not ours."""
    spec = AGENT_DEPLOYMENT.spec.model_validate(obj.get("spec") or {})
    ref, meta = spec.traffic.gateway_ref, obj["metadata"]
    if ref is None:
        return {}
    if not kube.serves(GATEWAY_API, "HTTPRoute"):
        return {"gateway_api": False}
    gateway = kube.get_or_none(GATEWAY_API, "Gateway", ref.name, ref.namespace or meta["namespace"])
    route = kube.get_or_none(GATEWAY_API, "HTTPRoute", route_name(spec, meta["name"]), meta["namespace"])
    owners = (route or {}).get("metadata", {}).get("ownerReferences") or []
    if route is not None and not any(o.get("uid") == meta.get("uid") for o in owners):
        who = ", ".join(f"{o.get('kind')} {o.get('name')}" for o in owners) or "no owner (made by hand)"
        return {"gateway_found": gateway is not None, "route_foreign_owner": who}
    return {"gateway_found": gateway is not None, "route": agd.summarize_route(route) if route else None}


def observe(kube: Kube, obj: dict, s: Settings) -> agd.Observed:
    meta = Meta.of(obj)
    spec = obj.get("spec") or {}
    name = serving_name(meta.name)
    deployment = kube.get_or_none("apps/v1", "Deployment", name, meta.namespace)
    canary = kube.get_or_none("apps/v1", "Deployment", deployment_name(meta.name, CANARY), meta.namespace)
    hpa = kube.get_or_none("autoscaling/v2", "HorizontalPodAutoscaler", name, meta.namespace)
    try:
        traffic = _traffic(kube, obj)
    except ValueError:
        traffic = {}  # an invalid spec: decide says why, nothing is routed
    return agd.Observed(
        meta=meta, spec=spec, status=current_status(AGENT_DEPLOYMENT, obj),
        tenant=tenant_of_namespace(kube, meta.namespace),
        releases=releases_of_line(kube, spec.get("modelLine", ""), (meta.namespace, meta.name), s),
        trust_pem=trusted_public_key(kube, s),
        deployment=agd.summarize_deployment(deployment) if deployment else None,
        canary_deployment=agd.summarize_deployment(canary) if canary else None,
        **traffic,
        hpa_exists=hpa is not None, config=serving_config(s),
        trust_source=f"{s.system_namespace}/{TRUST_CONFIGMAP}",
        served_graphs=served_graphs(s, meta.namespace, meta.name) if deployment else None,
        budget_store=PROBER.probe(s.budget_store) if s.budget_store else None)


def agent_deployments_of_line(kube: Kube, line: str) -> list[tuple[str, str]]:
    """(name, namespace) of every AgentDeployment serving `line` (a release of it changed)."""
    return [(o["metadata"]["name"], o["metadata"]["namespace"])
            for o in lookup(kube, AGENT_DEPLOYMENT.kind, MODEL_LINE, line)]


def agent_deployments_on_gateway(kube: Kube, namespace: str, name: str) -> list[tuple[str, str]]:
    """(name, namespace) of every AgentDeployment whose gatewayRef names this Gateway."""
    out = []
    for o in kube.list(API_VERSION, AGENT_DEPLOYMENT.kind):
        m, ref = o["metadata"], ((o.get("spec") or {}).get("traffic") or {}).get("gatewayRef") or {}
        if ref.get("name") == name and (ref.get("namespace") or m["namespace"]) == namespace:
            out.append((m["name"], m["namespace"]))
    return out


def agent_deployments_naming_route(kube: Kube, namespace: str, route: str) -> list[tuple[str, str]]:
    """(name, namespace) of the AgentDeployments of `namespace` whose HTTPRoute would be `route`."""
    out = []
    for o in kube.list(API_VERSION, AGENT_DEPLOYMENT.kind, namespace):
        name = o["metadata"]["name"]
        if (((o.get("spec") or {}).get("traffic") or {}).get("httpRoute") or name) == route:
            out.append((name, namespace))
    return out
