"""The catalogue of condition reasons, reused as Event reasons (CamelCase, API conventions)."""

from enum import StrEnum


class Reason(StrEnum):
    # Valid
    SPEC_VALID = "SpecValid"
    INVALID_SPEC = "InvalidSpec"
    TENANT_NOT_FOUND = "TenantNotFound"
    NODE_POOL_NOT_ALLOWED = "NodePoolNotAllowed"
    MODEL_LINE_NOT_ALLOWED = "ModelLineNotAllowed"
    NAMESPACE_NOT_IN_TENANT = "NamespaceNotInTenant"
    NAMESPACE_CLAIMED = "NamespaceClaimed"
    # Ready / Progressing
    RECONCILED = "Reconciled"
    ACCEPTED = "Accepted"
    WAITING_FOR_DEPENDENCY = "WaitingForDependency"
    RECONCILE_ERROR = "ReconcileError"
