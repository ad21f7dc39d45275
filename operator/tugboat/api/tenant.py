"""Tenant (cluster-scoped, owned by the platform team): what a tenant may use and spend."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from .base import QUANTITY, Name, PermissionLevel, StatusBase, WireModel

Registry = Annotated[str, Field(min_length=1, max_length=253,
                                pattern=r"^[a-z0-9]([-a-z0-9.:/_]*[a-z0-9])?$")]


class TenantQuota(WireModel):
    """The tenant's total resources, split evenly over its namespaces' ResourceQuotas."""

    cpu: str = Field(default="8", pattern=QUANTITY, description="CPU, Kubernetes quantity: "
                     "the hard limit of both requests.cpu and limits.cpu; default 8")
    memory: str = Field(default="32Gi", pattern=QUANTITY, description="Memory, Kubernetes quantity: the "
                        "hard limit of both requests.memory and limits.memory; default 32Gi")
    gpus: int = Field(default=0, ge=0, le=100_000, description="GPU requests; default 0")
    agent_deployments: int = Field(default=10, ge=0, le=10_000, description="Most AgentDeployments "
                                   "in all, each namespace holding an even share; default 10")
    max_gpus_per_agent_deployment: int | None = Field(
        default=None, ge=0, le=100_000,
        description="Most GPUs one AgentDeployment may ask for at its largest scale "
                    "(gpus x replicas, or x maxReplicas when autoscaling); default: the gpus quota")


class StoreFailureMode(StrEnum):
    FAIL_OPEN = "FailOpen"
    FAIL_CLOSED = "FailClosed"


class TokenBudget(WireModel):
    """Tokens the tenant's serving pods may generate per time window."""

    tokens_per_window: int = Field(default=100_000, ge=1, description="Tokens per window; "
                                   "default 100000")
    window_seconds: int = Field(default=3600, ge=1, le=30 * 86400, description="Window length in "
                                "seconds (up to 30 days); default 3600")
    on_store_unavailable: StoreFailureMode = Field(
        default=StoreFailureMode.FAIL_OPEN, description="When the shared budget store is "
        "unreachable: FailOpen serves uncounted, FailClosed answers 503; default FailOpen")


class RolloutPlacement(WireModel):
    """Where the tenant stands in every rollout of its model lines."""

    wave: int = Field(default=0, ge=0, le=100, description="Canary wave (0-100); lower waves get "
                      "releases first; default 0")
    max_canary_weight: int = Field(default=100, ge=0, le=100, description="Highest canary weight of "
                                   "any step for this tenant, percent 0-100; default 100")
    pinned_release: Name | None = Field(default=None, description="Stay on this release: no "
                                        "rollout of its model line reaches this tenant")


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class TenantSpec(WireModel):
    """What a tenant may use and spend; the quota is its total, split evenly over its namespaces."""

    namespaces: list[Name] = Field(
        min_length=1, max_length=100,
        description="The tenant's namespaces: created when absent, adopted when they exist. Reserved "
                    "ones (default, kube-*, the operator's, gateway, monitoring and release namespaces, and "
                    "the operator's --reserved-namespaces) and those another Tenant holds are refused",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    # Non-empty: each becomes a RoleBinding subject, whose name the API server requires.
    groups: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, max_length=20, description="RBAC groups of the tenant's users",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    quota: TenantQuota = Field(default_factory=TenantQuota, description="Resource quota, total "
                               "over the namespaces")
    # Bounded lists keep the admission policies' CEL cost (per-request, over every Tenant) small.
    allowed_node_pools: list[Name] = Field(default_factory=lambda: ["cpu"], max_length=50,
                                           description="Node pools its workloads may use; "
                                                       "default [cpu]",
                                           json_schema_extra={"x-kubernetes-list-type": "set"})
    allowed_model_lines: list[Name] = Field(default_factory=list, max_length=100,
                                            description="Model lines its AgentDeployments may "
                                                        "serve; default none",
                                            json_schema_extra={"x-kubernetes-list-type": "set"})
    allowed_registries: list[Registry] = Field(
        default_factory=lambda: ["ghcr.io/tugboat-dev"], max_length=20,
        description="Image prefixes pods in the tenant's namespaces may use (matched up to a '/')",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    cost_center: str = Field(min_length=1, max_length=63, description="Cost center, recorded in "
                             "every serving audit record of the tenant")
    token_budget: TokenBudget = Field(default_factory=TokenBudget, description="Generated-token "
                                      "budget of its serving pods")
    permission_level: PermissionLevel = Field(
        default=PermissionLevel.STANDARD, description="Highest permission level its "
        "AgentDeployments grant: ReadOnly, Standard (default) or Elevated")
    rollout: RolloutPlacement = Field(default_factory=RolloutPlacement,
                                      description="Its place in rollouts")
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Delete: deleting the Tenant deletes the namespaces the operator created for it "
                    "(status.createdNamespaces), never one that existed before the Tenant listed it; "
                    "Retain (default) keeps every namespace and what is in it")


class CreatedNamespace(WireModel):
    """A namespace the operator created for the Tenant: the create answered 201 with this uid."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="Namespace name")
    uid: str = Field(description="uid the create returned")


class TenantStatus(StatusBase):
    namespaces: list[str] = Field(default_factory=list, description="Namespaces the tenant holds now")
    created_namespaces: list[CreatedNamespace] = Field(
        default_factory=list,
        description="Namespaces the operator created for this Tenant (deletionPolicy Delete removes "
                    "only these, and only while their uid is the one created); listed namespaces "
                    "that already existed are adopted and outlive the Tenant",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    agent_deployments: int | None = Field(default=None, description="AgentDeployments over its "
                                          "namespaces")


PRINTER_COLUMNS = [
    {"name": "CostCenter", "type": "string", "jsonPath": ".spec.costCenter"},
    {"name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces"},
    {"name": "Permission", "type": "string", "jsonPath": ".spec.permissionLevel", "priority": 1},
]
