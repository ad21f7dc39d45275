"""AgentDeployment: gather the Tenant, the model line's releases (with their rollout plans for
this deployment), the trusted key, our two track Deployments and, with a gateway, our HTTPRoute
for the pure decision."""

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
from .engine import current_status
from .gather import tenant_of_namespace
from .model_release import TRUST_CONFIGMAP, trusted_public_key
from .served_graphs import served_graphs
from .settings import Settings


def serving_config(s: Settings) -> ServingConfig:
    return ServingConfig(image=s.serving_image, pool_label=s.pool_label, artifact_root=s.artifact_root,
                         artifact_pvc=s.artifact_pvc, gateway_namespace=s.gateway_namespace,
                         monitoring_namespace=s.monitoring_namespace, cluster_domain=s.cluster_domain,
                         audit_key_secret=s.audit_key_secret, api_keys_secret=s.api_keys_secret)


def releases_of_line(kube: Kube, line: str,
                     target: tuple[str, str] | None = None) -> tuple[agd.ReleaseView, ...]:
    """`target`: (namespace, name) of the AgentDeployment whose rollout plans to read."""
    return tuple(agd.summarize_release(r, target) for r in kube.list(API_VERSION, MODEL_RELEASE.kind)
                 if (r.get("spec") or {}).get("modelLine") == line)


def _route(kube: Kube, obj: dict) -> dict | None:
    spec = AGENT_DEPLOYMENT.spec.model_validate(obj.get("spec") or {})
    if spec.traffic.gateway_ref is None:
        return None
    return kube.get_or_none(GATEWAY_API, "HTTPRoute", route_name(spec, obj["metadata"]["name"]),
                            obj["metadata"]["namespace"])


def observe(kube: Kube, obj: dict, s: Settings) -> agd.Observed:
    meta = Meta.of(obj)
    spec = obj.get("spec") or {}
    name = serving_name(meta.name)
    deployment = kube.get_or_none("apps/v1", "Deployment", name, meta.namespace)
    canary = kube.get_or_none("apps/v1", "Deployment", deployment_name(meta.name, CANARY), meta.namespace)
    hpa = kube.get_or_none("autoscaling/v2", "HorizontalPodAutoscaler", name, meta.namespace)
    try:
        route = _route(kube, obj)
    except ValueError:
        route = None  # an invalid spec: decide says why, nothing is routed
    return agd.Observed(
        meta=meta, spec=spec, status=current_status(AGENT_DEPLOYMENT, obj),
        tenant=tenant_of_namespace(kube, meta.namespace),
        releases=releases_of_line(kube, spec.get("modelLine", ""), (meta.namespace, meta.name)),
        trust_pem=trusted_public_key(kube, s),
        deployment=agd.summarize_deployment(deployment) if deployment else None,
        canary_deployment=agd.summarize_deployment(canary) if canary else None,
        route=agd.summarize_route(route) if route else None,
        hpa_exists=hpa is not None, config=serving_config(s),
        trust_source=f"{s.system_namespace}/{TRUST_CONFIGMAP}",
        served_graphs=served_graphs(s, meta.namespace, meta.name) if deployment else None)


def agent_deployments_of_line(kube: Kube, line: str) -> list[tuple[str, str]]:
    """(name, namespace) of every AgentDeployment serving `line` (a release of it changed)."""
    return [(o["metadata"]["name"], o["metadata"]["namespace"])
            for o in kube.list(API_VERSION, AGENT_DEPLOYMENT.kind)
            if (o.get("spec") or {}).get("modelLine") == line]
