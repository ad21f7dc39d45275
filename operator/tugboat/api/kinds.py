"""The four Tugboat kinds, described once: names, scope, models, printer columns."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from . import agent_deployment, model_release, tenant, training_run
from .base import (
    AGE_COLUMN,
    API_VERSION,
    GROUP,
    NAME_STARTS_WITH_LETTER,
    PHASE_COLUMN,
    READY_COLUMN,
    VERSION,
    Scope,
)


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    scope: Scope
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[dict, ...]
    root_rules: tuple[dict, ...] = ()  # CEL rules on the whole object (metadata.name)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def printer_columns(self) -> list[dict]:
        return [PHASE_COLUMN, *self.columns, READY_COLUMN, AGE_COLUMN]


TRAINING_RUN = Kind("TrainingRun", "trainingruns", "tr", "Namespaced",
                    training_run.TrainingRunSpec, training_run.TrainingRunStatus,
                    tuple(training_run.PRINTER_COLUMNS), (NAME_STARTS_WITH_LETTER,))
MODEL_RELEASE = Kind("ModelRelease", "modelreleases", "mr", "Namespaced",
                     model_release.ModelReleaseSpec, model_release.ModelReleaseStatus,
                     tuple(model_release.PRINTER_COLUMNS))
AGENT_DEPLOYMENT = Kind("AgentDeployment", "agentdeployments", "agd", "Namespaced",
                        agent_deployment.AgentDeploymentSpec, agent_deployment.AgentDeploymentStatus,
                        tuple(agent_deployment.PRINTER_COLUMNS), (NAME_STARTS_WITH_LETTER,))
TENANT = Kind("Tenant", "tenants", "tn", "Cluster", tenant.TenantSpec, tenant.TenantStatus,
              tuple(tenant.PRINTER_COLUMNS))

KINDS = (TENANT, TRAINING_RUN, MODEL_RELEASE, AGENT_DEPLOYMENT)
BY_KIND = {k.kind: k for k in KINDS}

__all__ = ["API_VERSION", "GROUP", "VERSION", "KINDS", "BY_KIND", "Kind",
           "TRAINING_RUN", "MODEL_RELEASE", "AGENT_DEPLOYMENT", "TENANT"]
