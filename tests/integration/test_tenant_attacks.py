"""Each way a tenant could widen its access, tried on the real API server, and refused.

A member of tenant red (impersonated with `--as --as-group`, as test_tenancy_rbac does, or with a
client certificate of its own where the attack is itself an impersonation) reaches for another
namespace, its Tenant, the operator's ServiceAccount, tenant blue's Secret, a privileged or
hostPath pod, and its namespace's labels. Erin, to whom the platform team delegated `edit` in red's
namespace (she may create pods), tries the pods. Every attempt must be refused by RBAC (403) or by
admission with a message that says why; the positive controls show that the same users do get
what they should.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml

from tests.integration.helpers import condition_is, get, wait_for
from tests.integration.tenancy_waits import quota_counted, tenant_rbac
from tugboat.api.base import API_VERSION
from tugboat.dev.tools import tool

RED, BLUE = "tn-red", "tn-blue"
AS_RED = ("--as=mallory@red", f"--as-group={RED}-devs")
AS_ERIN = ("--as=erin@red",)
SYSTEM, OPERATOR_SA = "tugboat-system", "tugboat-operator"
BLUE_SECRET = "blue-api-key"
POD_POLICY = "ValidatingAdmissionPolicy 'tenant-pod-security.tugboat.dev'"
TENANT_LABELS = ("tugboat.dev/tenant", "pod-security.kubernetes.io/enforce",
                 "pod-security.kubernetes.io/enforce-version")


def tenant(name: str) -> dict:
    return {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name},
            "spec": {"namespaces": [name], "groups": [f"{name}-devs"], "costCenter": f"cc-{name}",
                     "allowedModelLines": ["moe-arith"], "allowedRegistries": ["ghcr.io/tugboat-dev"]}}


@pytest.fixture(scope="module")
def tenants(cluster, kube, operator):
    for name in (RED, BLUE):
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(tenant(name)))
    for name in (RED, BLUE):
        tenant_rbac(kube, name)
        quota_counted(kube, name)
    cluster.kubectl("create", "namespace", SYSTEM, check=False)
    cluster.kubectl("create", "serviceaccount", OPERATOR_SA, "-n", SYSTEM, check=False)
    cluster.kubectl("create", "secret", "generic", BLUE_SECRET, "-n", BLUE, "--from-literal=key=s3cr3t",
                    check=False)
    cluster.kubectl("create", "rolebinding", "erin-edits", "-n", RED, "--clusterrole=edit", "--user=erin@red",
                    check=False)
    return RED, BLUE


def attempt(cluster, who: tuple[str, ...], *args: str, input: str | None = None):
    return cluster.kubectl(*who, *args, input=input, check=False)


def assert_forbidden(out, *needles: str) -> None:
    assert out.returncode != 0, f"allowed: {out.stdout}"
    assert "forbidden" in out.stderr.lower(), out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def agent(name: str, namespace: str, **spec) -> str:
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "AgentDeployment",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": {"modelLine": "moe-arith", **spec}})


HARDENED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def pod(name: str, **changes) -> str:
    """A pod Pod Security restricted admits, with `changes` merged into its spec."""
    spec = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "main", "image": "ghcr.io/tugboat-dev/tool:1",
                            "securityContext": HARDENED}]}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": RED},
                           "spec": {**spec, **changes}})


PRIVILEGED = {"containers": [{"name": "main", "image": "ghcr.io/tugboat-dev/tool:1",
                              "securityContext": {"privileged": True}}]}
HOST_PATH = {"volumes": [{"name": "node", "hostPath": {"path": "/"}}]}


# -- positive controls -------------------------------------------------------------------------

def test_the_tenant_manages_agent_deployments_in_its_namespace(cluster, kube, tenants):
    out = attempt(cluster, AS_RED, "apply", "-f", "-", input=agent("mine", RED))
    assert out.returncode == 0, out.stderr
    wait_for(condition_is(kube, "AgentDeployment", "mine", RED, "Valid", "True"), what="judged Valid")


def test_the_delegated_editor_runs_a_hardened_pod(cluster, tenants):
    out = attempt(cluster, AS_ERIN, "create", "--dry-run=server", "-f", "-", input=pod("hardened"))
    assert out.returncode == 0, out.stderr


# -- another namespace -------------------------------------------------------------------------

@pytest.mark.parametrize("namespace", [BLUE, "default"])
def test_no_namespace_but_its_own_takes_its_agent_deployments(cluster, tenants, namespace):
    out = attempt(cluster, AS_RED, "apply", "-f", "-", input=agent("intruder", namespace))
    assert_forbidden(out, f'namespace "{namespace}"')


@pytest.mark.parametrize("args", [
    ("create", "namespace", "tn-red-extra"), ("get", "agentdeployments", "-n", BLUE),
    ("get", "agentdeployments", "-A"), ("get", "pods", "-n", BLUE),
], ids=["new-namespace", "read-blue", "read-all", "blue-pods"])
def test_another_namespace_is_out_of_reach(cluster, tenants, args):
    assert_forbidden(attempt(cluster, AS_RED, *args))


# -- its Tenant --------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("patch", "tenant", RED, "--type=merge", "-p", json.dumps({"spec": {"namespaces": [RED, BLUE]}})),
    ("patch", "tenant", RED, "--type=merge", "-p", '{"spec":{"quota":{"gpus":64}}}'),
    ("patch", "tenant", RED, "--subresource=status", "--type=merge", "-p", '{"status":{"namespaces":[]}}'),
    ("delete", "tenant", RED),
], ids=["take-blue", "raise-quota", "rewrite-status", "delete"])
def test_its_tenant_is_read_only_to_it(cluster, tenants, args):
    assert_forbidden(attempt(cluster, AS_RED, *args))


def test_it_cannot_make_a_tenant_of_its_own(cluster, tenants):
    doc = tenant("tn-red-2")
    doc["spec"]["namespaces"] = [BLUE]
    assert_forbidden(attempt(cluster, AS_RED, "create", "-f", "-", input=yaml.safe_dump(doc)))


# -- the operator's ServiceAccount -------------------------------------------------------------

@pytest.fixture(scope="module")
def own_kubeconfig(cluster, tenants, tmp_path_factory):
    """Mallory's kubeconfig with a client certificate of her own (signed by the cluster's CA, group
    tn-red-devs), so her requests can carry impersonation headers of their own."""
    pki, tmp = cluster.kubeconfig.parent / "pki", tmp_path_factory.mktemp("mallory")
    key, csr, crt = (tmp / f"user.{ext}" for ext in ("key", "csr", "crt"))
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-subj", f"/CN=mallory@red/O={RED}-devs", "-out", csr], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
                    "-set_serial", str(uuid.uuid4().int >> 64), "-days", "1", "-out", crt],
                   check=True, capture_output=True)
    server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    ca = str(pki / "ca.crt")
    path = tmp / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "mallory",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "u", "user": {"client-certificate": str(crt), "client-key": str(key)}}],
        "contexts": [{"name": "mallory", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def as_mallory(config, *args: str):
    return subprocess.run([tool("kubectl"), "--kubeconfig", str(config), *args],
                          capture_output=True, text=True)


def test_her_own_credentials_are_her_tenants(own_kubeconfig):
    out = as_mallory(own_kubeconfig, "get", "agentdeployments", "-n", RED)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("identity", [
    (f"--as=system:serviceaccount:{SYSTEM}:{OPERATOR_SA}",), ("--as=system:admin",),
    ("--as=mallory@red", "--as-group=system:masters"),
], ids=["operator-sa", "admin", "masters-group"])
def test_she_cannot_impersonate_the_operator_or_an_admin(own_kubeconfig, identity):
    assert_forbidden(as_mallory(own_kubeconfig, *identity, "get", "secrets", "-A"), "cannot impersonate")


@pytest.mark.parametrize(("who", "args"), [
    (AS_RED, ("create", "token", OPERATOR_SA, "-n", SYSTEM)),
    (AS_ERIN, ("create", "token", OPERATOR_SA, "-n", SYSTEM)),
    (AS_RED, ("get", "secrets", "-n", SYSTEM)),
    (AS_RED, ("create", "rolebinding", "grab", "-n", RED, "--clusterrole=cluster-admin",
              f"--serviceaccount={SYSTEM}:{OPERATOR_SA}")),
    (AS_ERIN, ("create", "rolebinding", "grab", "-n", RED, "--clusterrole=cluster-admin", "--user=erin@red")),
    (AS_RED, ("create", "serviceaccount", "mine", "-n", RED)),
], ids=["token", "editor-token", "system-secrets", "bind-operator", "editor-escalates", "own-sa"])
def test_the_operators_service_account_is_out_of_reach(cluster, tenants, who, args):
    assert_forbidden(attempt(cluster, who, *args))


# -- another tenant's Secret -------------------------------------------------------------------

@pytest.mark.parametrize(("who", "args"), [
    (AS_RED, ("get", "secret", BLUE_SECRET, "-n", BLUE)), (AS_RED, ("get", "secrets", "-A")),
    (AS_RED, ("get", "secrets", "-n", RED)), (AS_ERIN, ("get", "secret", BLUE_SECRET, "-n", BLUE)),
], ids=["blue-secret", "all-secrets", "own-secrets", "editor-blue-secret"])
def test_another_tenants_secret_is_out_of_reach(cluster, tenants, who, args):
    assert_forbidden(attempt(cluster, who, *args))


# -- privileged or hostPath pods ---------------------------------------------------------------

@pytest.mark.parametrize("changes", [PRIVILEGED, HOST_PATH], ids=["privileged", "host-path"])
def test_the_tenant_creates_no_pods_at_all(cluster, tenants, changes):
    assert_forbidden(attempt(cluster, AS_RED, "create", "-f", "-", input=pod("escape", **changes)),
                     'cannot create resource "pods"')


@pytest.mark.parametrize("changes", [PRIVILEGED, HOST_PATH], ids=["privileged", "host-path"])
def test_the_editor_gets_no_privileged_or_host_path_pod(cluster, tenants, changes):
    out = attempt(cluster, AS_ERIN, "create", "-f", "-", input=pod("escape", **changes))
    # Both Pod Security admission (by label) and our policy (by the Tenant's list) refuse it.
    assert_forbidden(out)
    assert "PodSecurity" in out.stderr or POD_POLICY in out.stderr, out.stderr


# -- a removed namespace label -----------------------------------------------------------------

@pytest.mark.parametrize("who", [AS_RED, AS_ERIN], ids=["tenant", "editor"])
def test_nobody_in_the_tenant_edits_its_namespace(cluster, tenants, who):
    unlabel = {"metadata": {"labels": {k: None for k in TENANT_LABELS}}}
    out = attempt(cluster, who, "patch", "namespace", RED, "--type=merge", "-p", json.dumps(unlabel))
    # kubectl reads the Namespace first: the tenant is refused there already, the editor at the patch.
    assert_forbidden(out, 'resource "namespaces"')
    can = attempt(cluster, who, "auth", "can-i", "patch", f"namespace/{RED}")
    assert can.stdout.strip() == "no", (can.stdout, can.stderr)


def test_a_namespace_without_its_labels_is_still_the_tenants(cluster, kube, tenants):
    # Settle first: each AgentDeployment created makes the operator re-apply the namespace.
    wait_for(lambda: (get(kube, "Tenant", RED).get("status") or {}).get("agentDeployments") == 1,
             what="the Tenant's count of its AgentDeployments")
    cluster.kubectl("label", "namespace", RED, *(f"{k}-" for k in TENANT_LABELS))
    labels = kube.get("v1", "Namespace", RED)["metadata"].get("labels") or {}
    assert not set(TENANT_LABELS) & set(labels), labels
    for changes, message in ((PRIVILEGED, "container(s) main run privileged"),
                             (HOST_PATH, "volume(s) node (hostPath) are of a type tenant namespaces forbid")):
        out = attempt(cluster, AS_ERIN, "create", "-f", "-", input=pod("escape", **changes))
        assert_forbidden(out, POD_POLICY, message)
    images = attempt(cluster, AS_ERIN, "create", "-f", "-",
                     input=pod("foreign", containers=[{"name": "main", "image": "docker.io/library/busybox:1",
                                                       "securityContext": HARDENED}]))
    assert_forbidden(images, "ValidatingAdmissionPolicy 'tenant-image-registries.tugboat.dev'")
    gpu = attempt(cluster, AS_RED, "apply", "-f", "-", input=agent("gpu", RED, nodePool="gpu"))
    assert_forbidden(gpu, "node pool 'gpu' is not allowed for tenant tn-red")
