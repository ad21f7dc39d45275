"""Pure launch decisions: GPU fallback and the size of a local Ray cluster."""

from tugboat_workloads.train.config import ResourcesSpec
from tugboat_workloads.train.ray_launch import decide_use_gpu, local_cluster_cpus


def test_gpu_requested_without_gpus_falls_back_to_cpu_with_a_warning():
    use_gpu, warning = decide_use_gpu(True, 0)
    assert use_gpu is False and "no GPUs" in warning and "CPU" in warning
    assert decide_use_gpu(True, 4) == (True, None)
    assert decide_use_gpu(False, 4) == (False, None)


def test_local_cluster_fits_the_workers():
    assert local_cluster_cpus(ResourcesSpec(workers=2, cpus_per_worker=1)) == 2
    assert local_cluster_cpus(ResourcesSpec(workers=1, cpus_per_worker=0.5)) == 2
    assert local_cluster_cpus(ResourcesSpec(workers=3, cpus_per_worker=1.5)) == 5
