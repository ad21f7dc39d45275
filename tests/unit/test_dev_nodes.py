"""Dev node pools: loopback IPs only, GPU pool tainted with nvidia.com/gpu allocatable."""

import ipaddress

from tugboat.dev.nodes import DEFAULT_POOLS, build_nodes


def test_every_node_ip_is_loopback():
    for node in build_nodes():
        for addr in node["status"]["addresses"]:
            assert ipaddress.ip_address(addr["address"]).is_loopback


def test_gpu_pool_shape():
    gpu = [n for n in build_nodes() if n["metadata"]["labels"]["tugboat.dev/pool"] == "gpu"]
    assert len(gpu) == next(p.nodes for p in DEFAULT_POOLS if p.name == "gpu")
    for n in gpu:
        assert int(n["status"]["allocatable"]["nvidia.com/gpu"]) > 0
        assert n["spec"]["taints"][0]["key"] == "nvidia.com/gpu"
    cpu = [n for n in build_nodes() if n["metadata"]["labels"]["tugboat.dev/pool"] == "cpu"]
    assert all("nvidia.com/gpu" not in n["status"]["allocatable"] for n in cpu)
    assert all(not n["spec"]["taints"] for n in cpu)
