"""Index functions for the cluster-wide lookups (which objects care about this one), and the one
lookup that uses them: from the informers' indexes when the operator caches the kind, else by
listing and filtering with the same function (the CLI, tests that drive reconciles by hand)."""

from __future__ import annotations

from ..api.base import API_VERSION
from ..api.kinds import AGENT_DEPLOYMENT, MODEL_RELEASE, TENANT, TRAINING_RUN
from ..builders.agent_deployment import GATEWAY_API
from ..builders.training_run import RUN_LABEL
from ..kube.cached import CachedKube
from ..kube.client import Kube

MODEL_LINE, TRAINING_SOURCE, NAMESPACES = "modelLine", "trainingRun", "namespaces"


def by_model_line(obj: dict) -> list[str]:
    line = (obj.get("spec") or {}).get("modelLine")
    return [line] if isinstance(line, str) and line else []


def by_training_source(obj: dict) -> list[str]:
    """A release built from a TrainingRun, filed under "namespace/name" of that run."""
    run = ((obj.get("spec") or {}).get("source") or {}).get("trainingRun")
    return [f"{obj['metadata'].get('namespace')}/{run}"] if isinstance(run, str) and run else []


def by_listed_namespace(obj: dict) -> list[str]:
    listed = (obj.get("spec") or {}).get("namespaces") or []
    return [ns for ns in listed if isinstance(ns, str)]


INDEXES = {
    AGENT_DEPLOYMENT.kind: {MODEL_LINE: by_model_line},
    MODEL_RELEASE.kind: {MODEL_LINE: by_model_line, TRAINING_SOURCE: by_training_source},
    TENANT.kind: {NAMESPACES: by_listed_namespace},
    TRAINING_RUN.kind: {},
}


MANAGED = "app.kubernetes.io/managed-by=tugboat"
# The other kinds reconciles read or apply, cached too: (apiVersion, kind, plural, label selector).
# Our children only (a same-named object someone else made decides nothing: our apply takes it
# over); the Ray pods of TrainingRuns; whole kinds where others' objects decide (HTTPRoutes: a
# foreign route holding our route's name; Gateways; Namespaces: who made them; Nodes: the pools).
# RoleBindings are not cached: listing every binding of the cluster is more than a Tenant needs.
CHILD_CACHES = (
    ("apps/v1", "Deployment", "deployments", MANAGED),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", MANAGED),
    ("ray.io/v1", "RayJob", "rayjobs", MANAGED),
    ("batch/v1", "Job", "jobs", MANAGED),
    ("v1", "ConfigMap", "configmaps", MANAGED),
    ("v1", "ResourceQuota", "resourcequotas", MANAGED),
    ("v1", "LimitRange", "limitranges", MANAGED),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", MANAGED),
    ("v1", "Pod", "pods", RUN_LABEL),
    ("v1", "Namespace", "namespaces", None),
    ("v1", "Node", "nodes", None),
    (GATEWAY_API, "HTTPRoute", "httproutes", None),
    (GATEWAY_API, "Gateway", "gateways", None),
)


def lookup(kube: Kube, kind: str, index: str, value: str) -> list[dict]:
    """Every object of `kind` (a Tugboat kind) that the index `index` files under `value`."""
    if isinstance(kube, CachedKube) and kube.caches(API_VERSION, kind):
        return kube.by_index(API_VERSION, kind, index, value)
    fn = INDEXES[kind][index]
    return [o for o in kube.list(API_VERSION, kind) if value in fn(o)]
