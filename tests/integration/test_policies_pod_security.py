"""policies/tenant-pod-security.yaml on the real API server, side by side with Pod Security admission.

Tenant tn-pss lists LAB, a namespace without a single label: only our policy can refuse a pod
there, so it must refuse by the Tenant's list alone. PSS is no tenant's, but carries Pod Security
admission's `enforce: restricted` label: every pod our policy refuses, the API server's own
restricted profile must refuse too, and every pod it admits (the operator's own among them) both
admit. Server-side dry runs: full admission, nothing stored. No operator runs in this module, so
no one labels or fixes anything behind the test's back.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tests.integration.helpers import wait_for
from tugboat.api.agent_deployment import AgentDeploymentSpec
from tugboat.api.base import API_VERSION
from tugboat.api.model_release import ExportTarget, ModelReleaseSpec
from tugboat.api.tenant import TenantSpec
from tugboat.api.training_run import TrainingRunSpec
from tugboat.builders.agent_deployment import (
    ServingConfig,
    ServingContext,
    ServingRelease,
    build_pod_template,
    serving_name,
)
from tugboat.builders.model_release import ReleaseContext, build_export_job, build_sign_job
from tugboat.builders.training_run import TrainingContext, build_ray_job

TENANT, LAB, PSS = "tn-pss", "pss-lab", "pss-native"
REGISTRY = "ghcr.io/tugboat-dev"
IMAGE = f"{REGISTRY}/tool:1"
POLICY = "ValidatingAdmissionPolicy 'tenant-pod-security.tugboat.dev'"
PSA = 'violates PodSecurity "restricted:latest"'
AGENT = "agent"


@pytest.fixture(scope="module")
def namespaces(cluster):
    cluster.kubectl("create", "namespace", LAB, check=False)
    cluster.kubectl("create", "namespace", PSS, check=False)
    cluster.kubectl("label", "namespace", PSS, "--overwrite", "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/enforce-version=latest")
    tenant = {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": TENANT},
              "spec": {"namespaces": [LAB], "costCenter": "cc-pss", "allowedRegistries": [REGISTRY]}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(tenant))
    for namespace in (LAB, PSS):  # admission looks up a pod's ServiceAccount, dry run or not
        cluster.kubectl("create", "serviceaccount", serving_name(AGENT), "-n", namespace, check=False)
    # The policy sees a new Tenant once the API server's param informer has it.
    wait_for(lambda: POLICY in dry_run(cluster, LAB, hardened(hostNetwork=True)).stderr,
             what="the Tenant as the policy's param")
    return LAB, PSS


def hardened(name: str = "probe", **spec) -> dict:
    """What Pod Security restricted admits: every field it judges, set the way it wants."""
    sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "main", "image": IMAGE, "securityContext": sc}], **spec}}


def dry_run(cluster, namespace: str, pod: dict):
    return cluster.kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-",
                           input=yaml.safe_dump(pod), check=False)


def main_sc(pod: dict) -> dict:
    return pod["spec"]["containers"][0]["securityContext"]


def with_(change):
    def build() -> dict:
        pod = hardened()
        change(pod)
        return pod
    return build


def _init(pod):
    pod["spec"]["initContainers"] = [{"name": "setup", "image": IMAGE}]


def _pod_not_non_root(pod):
    pod["spec"]["securityContext"]["runAsNonRoot"] = False
    main_sc(pod)["runAsNonRoot"] = True


def _unconfined_container(pod):
    main_sc(pod)["seccompProfile"] = {"type": "Unconfined"}


def _no_seccomp(pod):
    del pod["spec"]["securityContext"]["seccompProfile"]


def _no_non_root(pod):
    del pod["spec"]["securityContext"]["runAsNonRoot"]


def _unmasked_proc(pod):
    pod["spec"]["hostUsers"] = False  # the API server allows Unmasked in a user namespace only
    main_sc(pod)["procMount"] = "Unmasked"


# (id, the pod, what our refusal must say): each one a control of Pod Security restricted.
REFUSED = [
    ("host-namespaces", with_(lambda p: p["spec"].update(hostPID=True, hostIPC=True)),
     "pod probe: hostPID, hostIPC share the node's namespaces"),
    ("privileged", with_(lambda p: main_sc(p).update(privileged=True, allowPrivilegeEscalation=True)),
     "pod probe: container(s) main run privileged"),
    ("init-container", with_(_init), "pod probe: container(s) setup may escalate privileges; "
     "set securityContext.allowPrivilegeEscalation: false"),
    ("escalation", with_(lambda p: main_sc(p).pop("allowPrivilegeEscalation")),
     "container(s) main may escalate privileges"),
    ("keeps-capabilities", with_(lambda p: main_sc(p).pop("capabilities")),
     "container(s) main keep Linux capabilities; set securityContext.capabilities.drop: [ALL]"),
    ("adds-capability",
     with_(lambda p: main_sc(p)["capabilities"].update(add=["NET_BIND_SERVICE", "SYS_ADMIN"])),
     "container(s) main add capabilities other than NET_BIND_SERVICE"),
    ("may-run-as-root", with_(_no_non_root),
     "pod probe: main may run as root; set securityContext.runAsNonRoot: true on the pod or every container"),
    ("pod-not-non-root", with_(_pod_not_non_root), "pod probe: (pod) may run as root"),
    ("root-uid", with_(lambda p: main_sc(p).update(runAsUser=0)),
     "pod probe: main run as user 0; set securityContext.runAsUser to a non-zero uid"),
    ("no-seccomp", with_(_no_seccomp), "pod probe: main lack a seccomp profile"),
    ("unconfined", with_(_unconfined_container), "pod probe: main lack a seccomp profile"),
    ("host-port", with_(lambda p: p["spec"]["containers"][0].update(
        ports=[{"containerPort": 8080, "hostPort": 8080}])), "container(s) main use host ports"),
    ("probe-host", with_(lambda p: p["spec"]["containers"][0].update(readinessProbe={
        "httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}})),
     "container(s) main aim probes or lifecycle hooks at another host"),
    ("proc-mount", with_(_unmasked_proc),
     "container(s) main unmask /proc"),
    ("apparmor", with_(lambda p: main_sc(p).update(appArmorProfile={"type": "Unconfined"})),
     "pod probe: main override AppArmor"),
    ("selinux", with_(lambda p: p["spec"]["securityContext"].update(
        seLinuxOptions={"type": "spc_t"})), "pod probe: (pod) set custom SELinux options"),
    ("sysctl", with_(lambda p: p["spec"]["securityContext"].update(
        sysctls=[{"name": "kernel.msgmax", "value": "65536"}])),
     "sysctl(s) kernel.msgmax are not in the safe set"),
    ("host-path", with_(lambda p: p["spec"].update(volumes=[{"name": "root", "hostPath": {"path": "/"}}])),
     "volume(s) root (hostPath) are of a type tenant namespaces forbid"),
    ("nfs", with_(lambda p: p["spec"].update(volumes=[{"name": "share",
                                                        "nfs": {"server": "10.0.0.1", "path": "/"}}])),
     "volume(s) share are of a type"),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_restricted_refuses_our_policy_refuses_by_the_tenants_list(cluster, namespaces, build, message):
    ours = dry_run(cluster, LAB, build())
    assert ours.returncode != 0, "admitted in a namespace its Tenant lists"
    assert POLICY in ours.stderr and message in ours.stderr, ours.stderr
    native = dry_run(cluster, PSS, build())
    assert native.returncode != 0 and PSA in native.stderr, native.stderr


def _apparmor_annotation(pod):
    pod["metadata"]["annotations"] = {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}


def test_an_apparmor_annotation_is_judged_too(cluster, namespaces):
    # API validation refuses an annotation that contradicts the field, so this pod sets only the annotation.
    pod = with_(_apparmor_annotation)()
    ours = dry_run(cluster, LAB, pod)
    assert ours.returncode != 0
    assert "annotation container.apparmor.security.beta.kubernetes.io/main override AppArmor" in ours.stderr
    assert PSA in dry_run(cluster, PSS, pod).stderr


def _every_allowed_volume(pod):
    pod["spec"]["volumes"] = [
        {"name": "cm", "configMap": {"name": "x"}}, {"name": "s", "secret": {"secretName": "x"}},
        {"name": "e", "emptyDir": {}}, {"name": "d", "downwardAPI": {"items": []}},
        {"name": "p", "projected": {"sources": []}},
        {"name": "c", "persistentVolumeClaim": {"claimName": "x"}},
        {"name": "csi", "csi": {"driver": "x.example.com"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}]


def _container_level_only(pod):
    pod["spec"]["securityContext"] = {}
    main_sc(pod).update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})


def _user_namespace(pod):
    pod["spec"]["hostUsers"] = False
    pod["spec"]["securityContext"] = {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}}


ADMITTED = [
    ("hardened", hardened),
    ("net-bind-service", with_(lambda p: main_sc(p)["capabilities"].update(add=["NET_BIND_SERVICE"]))),
    ("container-level", with_(_container_level_only)),
    ("safe-sysctl-selinux-apparmor", with_(lambda p: p["spec"]["securityContext"].update(
        sysctls=[{"name": "net.ipv4.tcp_syncookies", "value": "1"}], seLinuxOptions={"type": "container_t"},
        appArmorProfile={"type": "RuntimeDefault"}))),
    ("allowed-volumes", with_(_every_allowed_volume)),
    ("user-namespace-root", with_(_user_namespace)),
]


@pytest.mark.parametrize("build", [c[1] for c in ADMITTED], ids=[c[0] for c in ADMITTED])
def test_what_restricted_admits_our_policy_admits(cluster, namespaces, build):
    for namespace in (LAB, PSS):
        out = dry_run(cluster, namespace, build())
        assert out.returncode == 0, (namespace, out.stderr)


def _operator_pods() -> dict[str, dict]:
    """The pod templates the operator builds, as Pods."""
    tenant = TenantSpec.model_validate({"namespaces": [LAB], "costCenter": "cc"})
    owner = {"apiVersion": API_VERSION, "kind": "AgentDeployment",
             "metadata": {"name": AGENT, "namespace": LAB, "uid": "u1"}}
    config = ServingConfig(image=f"{REGISTRY}/tugboat:1", pool_label="pool", artifact_root="/art",
                           artifact_pvc="art", gateway_namespace="gw", monitoring_namespace="mon")
    serving = ServingContext(owner, TENANT, tenant, ServingRelease("r1", "/art/r1", "a" * 64), "PEM", config)
    run = TrainingRunSpec.model_validate({"data": {"uri": "builtin://arithmetic", "sha256": "b" * 64},
                                          "resources": {"workers": 1, "gpusPerWorker": 1, "nodePool": "gpu"}})
    training = TrainingContext({**owner, "kind": "TrainingRun"}, 1, f"{REGISTRY}/tugboat:1", "2.60.0", "pool",
                               "cpu", None, "/art/ckpt")
    release = ModelReleaseSpec.model_validate({"modelLine": "m", "source": {"trainingRun": "t"}})
    jobs = ReleaseContext({**owner, "kind": "ModelRelease"}, f"{REGISTRY}/tugboat:1", "pool", "/art/ckpt",
                          "/art/r1", artifact_pvc="art", artifact_root="/art")
    cluster_spec = build_ray_job(run, training)["spec"]["rayClusterSpec"]
    templates = {
        "serving": build_pod_template(AgentDeploymentSpec.model_validate({"modelLine": "m"}), serving),
        "ray-head": cluster_spec["headGroupSpec"]["template"],
        "ray-worker": cluster_spec["workerGroupSpecs"][0]["template"],
        "export": build_export_job(release, jobs, ExportTarget.ONNX)["spec"]["template"],
        "export-tensorrt": build_export_job(release, jobs, ExportTarget.TENSORRT)["spec"]["template"],
        "sign": build_sign_job(release, jobs)["spec"]["template"],
    }
    return {role: {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {**copy.deepcopy(t.get("metadata") or {}), "name": f"built-{role}"},
                   "spec": copy.deepcopy(t["spec"])} for role, t in templates.items()}


@pytest.mark.parametrize("role", sorted(_operator_pods()))
def test_the_pods_the_operator_builds_are_admitted(cluster, namespaces, role):
    pod = _operator_pods()[role]
    for namespace in (LAB, PSS):
        out = dry_run(cluster, namespace, pod)
        assert out.returncode == 0, (namespace, out.stderr)


def test_ephemeral_containers_are_judged(cluster, namespaces):
    cluster.kubectl("create", "-n", LAB, "-f", "-", input=yaml.safe_dump(hardened("debuggee")))
    debug = {"spec": {"ephemeralContainers": [
        {"name": "debug", "image": IMAGE, "targetContainerName": "main"}]}}
    out = cluster.kubectl("patch", "pod", "debuggee", "-n", LAB, "--subresource=ephemeralcontainers",
                          "--type=strategic", "-p", json.dumps(debug), check=False)
    assert out.returncode != 0 and POLICY in out.stderr, out.stderr
    assert "container(s) debug may escalate privileges" in out.stderr, out.stderr
    debug["spec"]["ephemeralContainers"][0]["securityContext"] = copy.deepcopy(main_sc(hardened()))
    ok = cluster.kubectl("patch", "pod", "debuggee", "-n", LAB, "--subresource=ephemeralcontainers",
                         "--type=strategic", "-p", json.dumps(debug), check=False)
    assert ok.returncode == 0, ok.stderr


def test_namespaces_no_tenant_lists_are_not_judged(cluster, namespaces):
    cluster.kubectl("create", "namespace", "pss-free", check=False)
    # A tenant label set by hand makes no namespace a tenant's: only a Tenant's list does.
    cluster.kubectl("label", "namespace", "pss-free", "tugboat.dev/tenant=tn-pss", "--overwrite")
    pod = hardened(hostNetwork=True)
    main_sc(pod).update(privileged=True, allowPrivilegeEscalation=True)
    out = dry_run(cluster, "pss-free", pod)
    assert out.returncode == 0, out.stderr


def test_images_are_judged_by_the_tenants_list_too(cluster, namespaces):
    pod = hardened()
    pod["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1"
    out = dry_run(cluster, LAB, pod)
    assert out.returncode != 0
    assert "ValidatingAdmissionPolicy 'tenant-image-registries.tugboat.dev'" in out.stderr, out.stderr
    assert "image(s) docker.io/library/busybox:1 are not from a registry tenant tn-pss allows" in out.stderr
