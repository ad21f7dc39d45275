"""The Ray Train side of the loop: the Session for a TorchTrainer worker, and the function each
worker runs.

Decides how the loop's needs map onto Ray Train: DDP through prepare_model, a mean all-reduce
on the process group Ray set up (gloo on CPU, NCCL on GPU), and checkpoints persisted by
ray.train.report under a name derived from the step. Must not decide training logic.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch import nn

from tugboat_workloads.train.loop import LoopInputs, run_training
from tugboat_workloads.train.session import NullSink, StepSink, checkpoint_dir_name


class RaySession:
    def __init__(self, storage_path: str, run_name: str):
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.experiment_dir = Path(storage_path) / run_name

    def prepare(self, model: nn.Module) -> nn.Module:
        # Every parameter gets a gradient (experts run even on zero rows), so DDP does not need
        # the slower find_unused_parameters scan.
        return ray.train.torch.prepare_model(
            model, parallel_strategy_kwargs={"find_unused_parameters": False})

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1 or not dist.is_initialized():
            return tensor
        reduced = tensor.clone()
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced / self.world_size

    def checkpoint(self, step: int, write: Callable[[Path], Any], metrics: Mapping[str, float]) -> str | None:
        name = checkpoint_dir_name(step)
        report_metrics = {**metrics, "step": step}
        if self.rank != 0:
            # report() is a barrier: every rank calls it, only rank 0 carries the files.
            ray.train.report(report_metrics, checkpoint=None, checkpoint_dir_name=name)
            return None
        with tempfile.TemporaryDirectory(prefix="tugboat-ckpt-") as staging:
            write(Path(staging))
            ray.train.report(report_metrics, checkpoint=ray.train.Checkpoint.from_directory(staging),
                             checkpoint_dir_name=name)
        return str(self.experiment_dir / name)


def train_worker(loop_config: dict[str, Any]) -> dict[str, Any]:
    """TorchTrainer's train_loop_per_worker. Returns the loop summary (rank 0's reaches fit())."""
    inputs: LoopInputs = loop_config["inputs"]
    torch.set_num_threads(max(1, int(loop_config["threads"])))
    session = RaySession(loop_config["storage_path"], loop_config["run_name"])
    sink: StepSink = NullSink()
    if session.rank == 0 and loop_config.get("tracking_uri") and loop_config.get("run_id"):
        from tugboat_workloads.train.tracking import MlflowStepSink

        sink = MlflowStepSink(loop_config["tracking_uri"], loop_config["run_id"])
    try:
        return run_training(inputs, session, sink).to_dict()
    finally:
        sink.close()
