"""AgentDeployment: gather the Tenant, the model line's releases, the trusted key and our
Deployment for the pure decision."""

from __future__ import annotations

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE
from ..builders.agent_deployment import ServingConfig, serving_name
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
                         monitoring_namespace=s.monitoring_namespace, cluster_domain=s.cluster_domain)


def releases_of_line(kube: Kube, line: str) -> tuple[agd.ReleaseView, ...]:
    return tuple(agd.summarize_release(r) for r in kube.list(API_VERSION, MODEL_RELEASE.kind)
                 if (r.get("spec") or {}).get("modelLine") == line)


def observe(kube: Kube, obj: dict, s: Settings) -> agd.Observed:
    meta = Meta.of(obj)
    spec = obj.get("spec") or {}
    name = serving_name(meta.name)
    deployment = kube.get_or_none("apps/v1", "Deployment", name, meta.namespace)
    hpa = kube.get_or_none("autoscaling/v2", "HorizontalPodAutoscaler", name, meta.namespace)
    return agd.Observed(
        meta=meta, spec=spec, status=current_status(AGENT_DEPLOYMENT, obj),
        tenant=tenant_of_namespace(kube, meta.namespace),
        releases=releases_of_line(kube, spec.get("modelLine", "")),
        trust_pem=trusted_public_key(kube, s),
        deployment=agd.summarize_deployment(deployment) if deployment else None,
        hpa_exists=hpa is not None, config=serving_config(s),
        trust_source=f"{s.system_namespace}/{TRUST_CONFIGMAP}",
        served_graphs=served_graphs(s, meta.namespace, meta.name) if deployment else None)


def agent_deployments_of_line(kube: Kube, line: str) -> list[tuple[str, str]]:
    """(name, namespace) of every AgentDeployment serving `line` (a release of it changed)."""
    return [(o["metadata"]["name"], o["metadata"]["namespace"])
            for o in kube.list(API_VERSION, AGENT_DEPLOYMENT.kind)
            if (o.get("spec") or {}).get("modelLine") == line]
