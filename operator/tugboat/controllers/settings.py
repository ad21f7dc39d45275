"""Operator configuration that decisions depend on: built once at start, passed explicitly.

Defaults describe a real cluster; `tugboat run` flags override them (the dev demo points them at
local services).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    # Node pools are found by this node label (e.g. cloud.google.com/gke-nodepool on GKE).
    pool_label: str = "tugboat.dev/pool"
    # Ray head and export Jobs need no GPU: they run on this pool.
    head_pool: str = "cpu"
    workload_image: str = "ghcr.io/tugboat-dev/tugboat-workloads:0.1.0"
    ray_version: str = "2.60.0"
    # None: training runs log to their own local store and the operator shows no live metrics.
    mlflow_tracking_uri: str | None = None
    # Checkpoints and artifacts: a path every workload pod sees (a shared volume in a cluster).
    artifact_root: str = "/var/lib/tugboat/artifacts"
    # The only directories file:// datasets may be read from (a tenant must not train on, and so
    # leak through a model, whatever the workload pod can read); empty: <artifact_root>/datasets.
    dataset_roots: tuple[str, ...] = ()
    # Namespace of the operator's own objects (trust ConfigMap, signing key Secrets by default).
    system_namespace: str = "tugboat-system"
    # --- tenancy and serving (AgentDeployment, Tenant) ---
    # Image of the serving runtime (python -m tugboat_workloads.serve).
    serving_image: str = "ghcr.io/tugboat-dev/tugboat-serve:0.1.0"
    # PVC holding artifact_root in a real cluster, mounted read-only by serving pods; None in dev,
    # where the data plane runs serving pods on the host and sees the artifact paths directly.
    artifact_pvc: str | None = None
    # Tenant NetworkPolicies admit traffic from these namespaces only: the Gateway's, and the one
    # whose Prometheus scrapes serving metrics for canary analysis.
    gateway_namespace: str = "tugboat-gateway"
    monitoring_namespace: str = "tugboat-system"
    # Namespaces no Tenant may claim (names or shell-style patterns such as "istio-*"), on top of
    # the ones always reserved: default, kube-*, and the system, gateway, monitoring and release namespaces.
    reserved_namespaces: tuple[str, ...] = ()
    # DNS suffix of Service endpoints reported in AgentDeployment status.
    cluster_domain: str = "cluster.local"
    # Secret (in each tenant namespace) whose key `key` is the audit HMAC key serving pods mount.
    audit_key_secret: str = "tugboat-audit-key"
    # Secret (in each tenant namespace) whose key `keys.json` lists the callers' API key hashes.
    api_keys_secret: str = "tugboat-api-keys"
    # redis:// URL of the tenants' shared token budget counters, given to serving pods.
    # None: each serving process counts its own windows.
    budget_store: str | None = None
    # --- canary analysis ---
    # Prometheus HTTP API (any URL; dev and tests use 127.0.0.1). None: no analysis can run.
    prometheus_url: str | None = None
    # ModelReleases in these (platform) namespaces roll out to AgentDeployments of their model line
    # in any tenant namespace that allows the line; a release elsewhere reaches its own namespace only.
    release_namespaces: tuple[str, ...] = ("ml-platform",)
    # --- deletion ---
    # Seconds a deleted object waits for what it cleans up (its RayJobs, say) before it goes anyway,
    # with a Warning naming what was left: a missing CRD or a foreign finalizer never wedges it.
    cleanup_timeout: float = 120.0
