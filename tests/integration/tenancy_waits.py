"""Waits the tenancy tests share: the moment a tenant namespace is usable."""

from __future__ import annotations

from tests.integration.helpers import wait_for


def quota_counted(kube, namespace: str, timeout: float = 90) -> None:
    """Quota admission refuses creations ("status unknown for quota") until the quota controller
    has computed usage for every resource it limits, custom-resource counts included."""
    def counted():
        rq = kube.get_or_none("v1", "ResourceQuota", "tugboat-tenant", namespace) or {}
        status = rq.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        return bool(hard) and set(hard) <= set(used)
    wait_for(counted, timeout=timeout, what=f"quota usage of {namespace}")


def tenant_rbac(kube, namespace: str) -> None:
    wait_for(lambda: kube.get_or_none("rbac.authorization.k8s.io/v1", "RoleBinding", "tugboat-tenant",
                                      namespace), what=f"tenant RBAC in {namespace}")
