"""policies/: ValidatingAdmissionPolicies the API server enforces, with Tenants as params.

Requests are made as the tenant's own user; every rejection must say what to change. The pod
security policy has a module of its own (test_policies_pod_security.py).
"""

from __future__ import annotations

import pytest
import yaml

from tests.integration.tenancy_waits import quota_counted, tenant_rbac
from tugboat.api.base import API_VERSION

GAMMA = "tn-gamma"
AS_GAMMA = ("--as=carol@gamma", f"--as-group={GAMMA}-devs")


@pytest.fixture(scope="module")
def gamma(cluster, kube, operator):
    doc = {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": GAMMA},
           "spec": {"namespaces": [GAMMA], "groups": [f"{GAMMA}-devs"], "costCenter": "cc-gamma",
                    "allowedNodePools": ["cpu"], "allowedModelLines": ["moe-arith"],
                    "allowedRegistries": ["ghcr.io/tugboat-dev"],
                    "quota": {"gpus": 4, "maxGpusPerAgentDeployment": 2}}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    tenant_rbac(kube, GAMMA)
    quota_counted(kube, GAMMA)
    return GAMMA


def agent(name: str, **spec) -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                           "metadata": {"name": name, "namespace": GAMMA},
                           "spec": {"modelLine": "moe-arith", "replicas": 1, **spec}})


def as_gamma(cluster, *args: str, input: str | None = None):
    return cluster.kubectl(*AS_GAMMA, *args, input=input, check=False)


REJECTED = [
    ({"nodePool": "gpu"},
     "spec.nodePool: node pool 'gpu' is not allowed for tenant tn-gamma; set spec.nodePool to one of: cpu"),
    ({"modelLine": "secret-line"},
     "spec.modelLine: model line 'secret-line' is not allowed for tenant tn-gamma; "
     "set spec.modelLine to one of: moe-arith"),
    ({"replicas": 3, "resources": {"gpus": 1}},
     "spec.resources.gpus: 1 GPUs x 3 replicas = 3 GPUs exceeds tenant tn-gamma's limit of 2 GPUs"),
    ({"resources": {"gpus": 1}, "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4}},
     "1 GPUs x 4 replicas = 4 GPUs exceeds"),
]


@pytest.mark.parametrize(("spec", "message"), REJECTED, ids=["node-pool", "model-line", "gpus", "gpus-hpa"])
def test_disallowed_agent_deployments_are_rejected_with_what_to_change(cluster, kube, gamma, spec, message):
    out = as_gamma(cluster, "apply", "-f", "-", input=agent("rejected", **spec))
    assert out.returncode != 0, "accepted"
    assert "ValidatingAdmissionPolicy 'agentdeployment-tenant-limits.tugboat.dev'" in out.stderr
    assert message in out.stderr, out.stderr
    assert kube.get_or_none(API_VERSION, "AgentDeployment", "rejected", GAMMA) is None


def test_within_limits_is_admitted_and_updates_are_judged_too(cluster, gamma):
    ok = as_gamma(cluster, "apply", "-f", "-", input=agent("within", replicas=2, resources={"gpus": 1}))
    assert ok.returncode == 0, ok.stderr
    moved = as_gamma(cluster, "patch", "agentdeployment", "within", "-n", GAMMA, "--type=merge",
                     "-p", '{"spec":{"nodePool":"gpu"}}')
    assert moved.returncode != 0 and "set spec.nodePool to one of: cpu" in moved.stderr, moved.stderr


def test_the_policy_binds_platform_admins_too(cluster, gamma):
    out = cluster.kubectl("apply", "-f", "-", input=agent("admin-made", nodePool="gpu"), check=False)
    assert out.returncode != 0 and "node pool 'gpu' is not allowed" in out.stderr, out.stderr


def restricted_pod(name: str, image: str, **spec) -> dict:
    """A pod that satisfies Pod Security 'restricted', so only our policies can refuse it."""
    sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
          "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": image, "securityContext": sc}], **spec}}


def create_pod(cluster, namespace: str, pod: dict):
    return cluster.kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod), check=False)


def test_images_only_from_the_tenants_registries(cluster, gamma):
    out = create_pod(cluster, GAMMA, restricted_pod("foreign", "docker.io/library/busybox:1"))
    assert out.returncode != 0
    assert ("pod foreign: image(s) docker.io/library/busybox:1 are not from a registry tenant tn-gamma "
            "allows; use images from: ghcr.io/tugboat-dev") in out.stderr, out.stderr
    # A look-alike prefix is not the registry.
    near = create_pod(cluster, GAMMA, restricted_pod("near", "ghcr.io/tugboat-dev-evil/x:1"))
    assert near.returncode != 0 and "not from a registry" in near.stderr
    ok = create_pod(cluster, GAMMA, restricted_pod("native", "ghcr.io/tugboat-dev/tool:1"))
    assert ok.returncode == 0, ok.stderr
