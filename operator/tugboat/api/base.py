"""Shared building blocks of the API models: wire naming, conditions, status basics.

The pydantic models in this package are the single source of the CRD schemas (see `crd.py`);
they decide shape and defaults only, never behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

GROUP = "tugboat.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# RFC 1123 label, as Kubernetes names of namespaces, pools and releases must be.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# A non-negative Kubernetes quantity exactly as the API server's parser reads it (Kubernetes' own
# OpenAPI pattern is looser: it admits "1.2.3", which every parser then refuses after admission),
# with the digits bounded so every admitted value is a finite number.
QUANTITY = r"^\+?([0-9]{1,18}(\.[0-9]{0,9})?|\.[0-9]{1,9})([eE][-+]?[0-9]{1,2}|[KMGTPE]i|[numkMGTPE])?$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
SHA256_HEX = r"^[a-f0-9]{64}$"

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]

# A root-level CEL rule (the only place metadata.name is visible to the schema): for kinds whose
# children include a Service (directly or through KubeRay), named after the object by child_name.
NAME_STARTS_WITH_LETTER = {
    "rule": "self.metadata.name.matches('^[a-z]')",
    "message": "metadata.name must start with a letter: Services are named after it (the serving "
               "Services, KubeRay's head Service) and a Service name is a DNS-1035 label",
}


@dataclass(frozen=True)
class Rule:
    """A cross-field rule, enforced twice from one definition: as CEL by the API server at
    apply time, and by the same model in Python (so pure code and tests agree with the CRD)."""

    cel: str
    message: str
    check: Callable[[Any], bool]
    field: str | None = None

    def wire(self) -> dict:
        out = {"rule": self.cel, "message": self.message}
        return {**out, "fieldPath": self.field} if self.field else out


def _publish_rules(schema: dict, cls: type) -> None:
    rules = getattr(cls, "RULES", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.wire() for r in rules]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; specs reject unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
        json_schema_extra=_publish_rules,
    )
    RULES: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self):
        for rule in self.RULES:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self

    def wire(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(WireModel):
    """One entry of status.conditions, by the Kubernetes API conventions."""

    type: str = Field(max_length=316, description="Condition type, e.g. Ready, Valid; unique in the list")
    status: ConditionStatus = Field(description="True, False or Unknown")
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                        description="CamelCase cause of the status, for machines")
    message: str = Field(default="", max_length=32768, description="Human-readable detail; default empty")
    observed_generation: int | None = Field(default=None, ge=0, description="metadata.generation "
                                            "the condition was computed from")
    last_transition_time: datetime = Field(description="When status last changed (RFC 3339)")


class StatusBase(WireModel):
    """Fields every Tugboat status has. Status is written by the operator only."""

    model_config = ConfigDict(extra="ignore")

    observed_generation: int | None = Field(default=None, description="metadata.generation of the "
                                            "spec this status was last reconciled from")
    phase: str | None = Field(default=None, description="Coarse lifecycle phase, for kubectl get")
    conditions: list[Condition] = Field(
        default_factory=list, description="Current conditions (Ready, Valid, ...), one per type",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    message: str | None = Field(default=None, description="Human-readable summary of the phase")


class PermissionLevel(StrEnum):
    READ_ONLY = "ReadOnly"
    STANDARD = "Standard"
    ELEVATED = "Elevated"


class LocalObjectRef(WireModel):
    name: Name = Field(description="Name of an object in the same namespace")


class SecretKeyRef(WireModel):
    """A key of a Secret in the object's own namespace."""

    name: Name = Field(description="Secret name")
    key: str = Field(default="private.pem", min_length=1, max_length=253,
                     description="Key in the Secret's data; default private.pem")


PHASE_COLUMN = {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
READY_COLUMN = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    "priority": 1,
}

Scope = Literal["Namespaced", "Cluster"]
