"""RayClusters as KubeRay v1.7 shapes them: the cluster a RayJob owns, its pods, its status. Pure.

Decides names (`<rayjob>-raycluster-<5 chars>`, head `<cluster>-head`, workers
`<cluster>-<group>-worker-<i>`), the labels KubeRay puts on pods (`ray.io/cluster`,
`ray.io/node-type`, `ray.io/group`, ...), how many workers a group wants (replicas clamped to
[minReplicas, maxReplicas], times numOfHosts; none when suspended), and the cluster's status
(state `ready` once the head and every desired worker are Running and Ready).
Must not talk to the cluster or read clocks: objects and `now` come in as arguments.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from fractions import Fraction

from .podstatus import with_condition

CLUSTER_LABEL = "ray.io/cluster"
NODE_TYPE_LABEL = "ray.io/node-type"
GROUP_LABEL = "ray.io/group"
HEAD_GROUP = "headgroup"
ORIGIN_NAME_LABEL = "ray.io/originated-from-cr-name"
ORIGIN_CRD_LABEL = "ray.io/originated-from-crd"
GPU = "nvidia.com/gpu"
NAME_LIMIT = 63  # the cluster name is a label value too
_SUFFIX = "-raycluster-"


def cluster_name_for(rayjob_name: str, suffix: str) -> str:
    """`<rayjob>-raycluster-<suffix>`, the RayJob part truncated so the whole fits a label value."""
    keep = NAME_LIMIT - len(_SUFFIX) - len(suffix)
    return f"{rayjob_name[:keep].rstrip('-')}{_SUFFIX}{suffix}"


def _owner(obj: Mapping) -> dict:
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def build_ray_cluster(rayjob: Mapping, name: str) -> dict:
    """The RayCluster a RayJob owns: its rayClusterSpec verbatim, labels saying where it came from."""
    meta = rayjob["metadata"]
    labels = dict(meta.get("labels") or {})
    labels.update({ORIGIN_NAME_LABEL: meta["name"], ORIGIN_CRD_LABEL: "RayJob"})
    return {
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                     "ownerReferences": [_owner(rayjob)]},
        "spec": copy.deepcopy(rayjob["spec"]["rayClusterSpec"]),
    }


def worker_count(group: Mapping) -> int:
    if group.get("suspend"):
        return 0
    low = int(group.get("minReplicas") or 0)
    high = int(group.get("maxReplicas") if group.get("maxReplicas") is not None else 2**31 - 1)
    replicas = group.get("replicas")
    replicas = low if replicas is None else int(replicas)
    return max(low, min(high, replicas)) * int(group.get("numOfHosts") or 1)


def _pod(cluster: Mapping, name: str, template: Mapping, node_type: str, group: str) -> dict:
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    labels.update({CLUSTER_LABEL: cluster["metadata"]["name"], NODE_TYPE_LABEL: node_type,
                   GROUP_LABEL: group, "ray.io/is-ray-node": "yes",
                   "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"})
    meta = {"name": name, "namespace": cluster["metadata"]["namespace"], "labels": labels,
            "ownerReferences": [_owner(cluster)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template["spec"])}


def desired_pods(cluster: Mapping) -> list[dict]:
    """Every pod the cluster should have, head first; none while the cluster is suspended."""
    spec = cluster["spec"]
    if spec.get("suspend"):
        return []
    name = cluster["metadata"]["name"]
    pods = [_pod(cluster, f"{name}-head", spec["headGroupSpec"]["template"], "head", HEAD_GROUP)]
    for group in spec.get("workerGroupSpecs") or []:
        gname = group["groupName"]
        for i in range(worker_count(group)):
            pods.append(_pod(cluster, f"{name}-{gname}-worker-{i}", group["template"], "worker", gname))
    return pods


def _running(pod: Mapping) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def pod_ready(pod: Mapping) -> bool:
    status = pod.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    return status.get("phase") == "Running" and conds.get("Ready") == "True"


_CPU = re.compile(r"^([0-9.]+)(m?)$")
_MEM_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
              "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MEM = re.compile(r"^([0-9.]+)(|k|M|G|T|Ki|Mi|Gi|Ti)$")


def _quantity(value, pattern: re.Pattern, units: Mapping[str, Fraction | int]) -> Fraction:
    m = pattern.match(str(value).strip())
    if not m:
        raise ValueError(f"unsupported quantity {value!r}")
    return Fraction(m.group(1)) * units[m.group(2)]


def _resources(pods: list[dict]) -> dict[str, str]:
    cpu, mem, gpu = Fraction(0), Fraction(0), 0
    for pod in pods:
        for c in pod["spec"].get("containers") or []:
            res = c.get("resources") or {}
            want = {**(res.get("requests") or {}), **(res.get("limits") or {})}
            if "cpu" in want:
                cpu += _quantity(want["cpu"], _CPU, {"": 1, "m": Fraction(1, 1000)})
            if "memory" in want:
                mem += _quantity(want["memory"], _MEM, _MEM_UNITS)
            gpu += int(want.get(GPU, 0))
    cpu_text = str(int(cpu)) if cpu.denominator == 1 else f"{int(cpu * 1000)}m"
    return {"desiredCPU": cpu_text, "desiredMemory": str(int(mem)), "desiredGPU": str(gpu)}


def _hosts(group: Mapping, field: str) -> int:
    return int(group.get(field) or 0) * int(group.get("numOfHosts") or 1)


def summarize_cluster(cluster: Mapping, pods: list[dict], now: str) -> dict:
    """The RayCluster status for the pods that exist now (a complete status, for a merge patch)."""
    desired = desired_pods(cluster)
    by_name = {p["metadata"]["name"]: p for p in pods}
    head = by_name.get(desired[0]["metadata"]["name"]) if desired else None
    workers = [by_name[d["metadata"]["name"]] for d in desired[1:] if d["metadata"]["name"] in by_name]
    groups = cluster["spec"].get("workerGroupSpecs") or []
    head_ready = head is not None and pod_ready(head)
    all_ready = (bool(desired) and head_ready and len(workers) == len(desired) - 1
                 and all(map(pod_ready, workers)))
    old = cluster.get("status") or {}
    # metav1.Condition: reason and message are required by the CRD schema.
    head_reason = ("HeadPodRunningAndReady" if head_ready else "HeadPodNotFound" if head is None
                   else "HeadPodNotReady")
    head_name = desired[0]["metadata"]["name"] if desired else "-"
    conditions = with_condition(list(old.get("conditions") or []), "HeadPodReady",
                                "True" if head_ready else "False", now, head_reason,
                                f"head pod {head_name}: {head_reason}")
    provisioned = all_ready or any(c.get("type") == "RayClusterProvisioned" and c.get("status") == "True"
                                   for c in conditions)  # KubeRay never takes this one back
    ready_count = sum(map(pod_ready, workers)) + int(head_ready)
    conditions = with_condition(
        conditions, "RayClusterProvisioned", "True" if provisioned else "False", now,
        "AllPodRunningAndReadyFirstTime" if provisioned else "RayClusterPodsProvisioning",
        f"{ready_count}/{len(desired)} pods running and ready")
    state = "suspended" if cluster["spec"].get("suspend") else "ready" if all_ready else None
    return {
        "state": state,
        "desiredWorkerReplicas": len(desired) - 1 if desired else 0,
        "availableWorkerReplicas": sum(1 for w in workers if _running(w)),
        "readyWorkerReplicas": sum(1 for w in workers if pod_ready(w)),
        "minWorkerReplicas": sum(_hosts(g, "minReplicas") for g in groups),
        "maxWorkerReplicas": min(2**31 - 1, sum(_hosts(g, "maxReplicas") for g in groups)),  # int32
        **_resources(desired),
        "head": ({"podName": head["metadata"]["name"], "podIP": (head.get("status") or {}).get("podIP", "")}
                 if head else None),
        "conditions": conditions,
        "observedGeneration": cluster["metadata"].get("generation"),
    }


def status_differs(old: Mapping, new: Mapping) -> bool:
    """True when a write would change something (None means 'absent' in a merge patch)."""
    return any((old.get(k) if old.get(k) != {} else None) != v for k, v in new.items())
