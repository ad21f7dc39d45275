"""Getting a Ray cluster and running one TorchTrainer fit on it.

Decides: connect to RAY_ADDRESS when set (the RayJob / Ray Jobs API case), otherwise start a
local Ray sized for this machine (loopback only, no telemetry: ray_local.py; small object store);
fall back to CPU with a warning when GPUs were asked for but the cluster has none; gloo on CPU,
NCCL on GPU. Must not decide training logic or the result (it reports what fit() returned).
Ray is imported inside the functions: a local cluster's environment must be set before that.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tugboat_workloads.train.config import ResourcesSpec
from tugboat_workloads.train.loop import LoopInputs
from tugboat_workloads.train.ray_local import LOOPBACK, default_home, local_ray_environment, prepare_home

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE_BYTES = 300 * 1024 * 1024


@dataclass(frozen=True)
class FitOutcome:
    summary: dict[str, Any] | None  # rank 0's LoopSummary.to_dict(), None if fit() failed
    error: str | None
    use_gpu: bool


def local_cluster_cpus(resources: ResourcesSpec) -> int:
    """CPUs to give a local Ray: at least 2, and never fewer than the workers reserve (Ray
    would otherwise retry placement forever, and SIGINT does not stop it)."""
    return max(2, math.ceil(resources.workers * resources.cpus_per_worker))


def decide_use_gpu(requested: bool, cluster_gpus: float) -> tuple[bool, str | None]:
    if requested and cluster_gpus <= 0:
        return False, ("resources.useGpu is true but the Ray cluster has no GPUs; "
                       "training on CPU (gloo) instead")
    return requested, None


def connect(resources: ResourcesSpec) -> bool:
    """ray.init for this process; returns True when it started a local cluster."""
    # Ray Train's print patch logs every worker print a second time; plain forwarding suffices.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    address = os.environ.get("RAY_ADDRESS")
    if address:
        import ray

        if not ray.is_initialized():
            log.info("connecting to the Ray cluster at %s", address)
            ray.init(address=address, log_to_driver=True)
        return False
    return _start_local(resources)


def _start_local(resources: ResourcesSpec) -> bool:
    env = local_ray_environment(prepare_home(default_home()))
    home = Path(env.pop("HOME"))
    for key, value in env.items():
        os.environ.setdefault(key, value)
    import ray  # after the environment: Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER on import

    if ray.is_initialized():
        return False
    with _home_of_children(home):
        ray.init(
            num_cpus=local_cluster_cpus(resources),
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=True,  # the state API lives there; without it Ray Train floods warnings
            dashboard_host=LOOPBACK,
            log_to_driver=True,
        )
    return True


@contextlib.contextmanager
def _home_of_children(home: Path) -> Iterator[None]:
    """HOME for the processes ray.init() starts (they keep it, and so do the workers the raylet
    starts later); this driver gets its own HOME back."""
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


def fit(inputs: LoopInputs, run_name: str, run_id: str) -> FitOutcome:
    import ray
    import ray.exceptions
    import ray.train
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from tugboat_workloads.train.ray_session import train_worker

    cfg = inputs.config
    use_gpu, warning = decide_use_gpu(cfg.resources.use_gpu, ray.cluster_resources().get("GPU", 0))
    if warning:
        log.warning(warning)
        print(f"[train] WARNING: {warning}", flush=True)
    _warn_if_too_small(cfg.resources)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={
            "inputs": inputs, "storage_path": cfg.storage_path, "run_name": run_name,
            "tracking_uri": cfg.mlflow.tracking_uri if cfg.mlflow else "", "run_id": run_id,
            "threads": cfg.resources.cpus_per_worker,
        },
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=cfg.resources.workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cfg.resources.cpus_per_worker}),
        run_config=RunConfig(
            name=run_name, storage_path=cfg.storage_path,
            # Retries belong to the operator (each one a new attempt that resumes from disk).
            failure_config=FailureConfig(max_failures=0),
            checkpoint_config=CheckpointConfig(num_to_keep=None),
        ),
    )
    try:
        result = trainer.fit()
    except (ray.train.TrainingFailedError, ray.exceptions.RayError) as exc:
        # Worker deaths and errors raised in the loop both arrive as TrainingFailedError.
        return FitOutcome(None, f"{type(exc).__name__}: {_shorten(str(exc))}", use_gpu)
    return FitOutcome(result.return_value, None, use_gpu)


def _warn_if_too_small(resources: ResourcesSpec) -> None:
    import ray

    needed = resources.workers * resources.cpus_per_worker
    available = ray.cluster_resources().get("CPU", 0)
    if available < needed:
        # Not an error: a KubeRay cluster may still be adding its worker pods.
        log.warning("Ray cluster has %s CPUs, the workers need %s; waiting for capacity", available, needed)


def _shorten(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
