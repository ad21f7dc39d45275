"""Node pools of the dev cluster, as Node manifests kwok will manage. Pure."""

from __future__ import annotations

from dataclasses import dataclass

POOL_LABEL = "tugboat.dev/pool"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Pool:
    name: str
    nodes: int
    cpu: str
    memory: str
    gpus: int = 0
    gpu_product: str | None = None

    @property
    def taints(self) -> list[dict]:
        # GPU nodes repel pods that do not ask for GPUs, as GPU pools on real clusters do.
        return [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}] if self.gpus else []


DEFAULT_POOLS = (
    Pool("cpu", nodes=2, cpu="16", memory="64Gi"),
    Pool("gpu", nodes=2, cpu="32", memory="256Gi", gpus=2, gpu_product="NVIDIA-A100-SXM4-80GB"),
)


def build_node(pool: Pool, index: int, ip: str) -> dict:
    labels = {POOL_LABEL: pool.name, "kubernetes.io/hostname": f"{pool.name}-{index}",
              "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}
    allocatable = {"cpu": pool.cpu, "memory": pool.memory, "pods": "110"}
    if pool.gpus:
        labels["nvidia.com/gpu.product"] = pool.gpu_product or "unknown"
        allocatable[GPU_RESOURCE] = str(pool.gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"{pool.name}-{index}", "labels": labels,
                     "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {"taints": pool.taints},
        "status": {
            "allocatable": allocatable,
            "capacity": allocatable,
            # Loopback, so nothing ever sends exec/log/metrics traffic off this machine.
            "addresses": [{"type": "InternalIP", "address": ip}],
        },
    }


def build_nodes(pools=DEFAULT_POOLS) -> list[dict]:
    out, n = [], 0
    for pool in pools:
        for i in range(pool.nodes):
            n += 1
            out.append(build_node(pool, i, f"127.1.0.{n}"))
    return out
