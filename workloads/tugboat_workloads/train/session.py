"""Where the training loop runs: the seam between the loop and its distributed runtime.

`Session` is what the loop needs (rank, device, model wrapping, a mean all-reduce, checkpoint
persistence); `LocalSession` is the single-process implementation used by tests and the
benchmark baseline. The Ray Train implementation lives in ray_session.py so that this module
never imports Ray. `StepSink` is where rank 0 sends per-step metrics (MLflow or nothing).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from tugboat_workloads.train.router_guard import Intervention


def checkpoint_dir_name(step: int) -> str:
    return f"checkpoint_step_{step:07d}"


class Session(Protocol):
    rank: int
    world_size: int
    device: torch.device

    def prepare(self, model: nn.Module) -> nn.Module: ...

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor: ...

    def checkpoint(self, step: int, write: Callable[[Path], Any], metrics: Mapping[str, float]) -> str | None:
        """Persist a checkpoint `write` fills in; returns its final directory on rank 0."""
        ...


class StepSink(Protocol):
    def log_step(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def log_checkpoint(self, step: int, directory: str) -> None: ...

    def log_intervention(self, intervention: Intervention) -> None: ...

    def close(self) -> None: ...


class NullSink:
    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def log_checkpoint(self, step: int, directory: str) -> None:
        pass

    def log_intervention(self, intervention: Intervention) -> None:
        pass

    def close(self) -> None:
        pass


class LocalSession:
    """One process, one device; checkpoints go straight under `root`."""

    rank = 0
    world_size = 1

    def __init__(self, root: str | Path, device: str = "cpu"):
        self.root = Path(root)
        self.device = torch.device(device)

    def prepare(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def checkpoint(self, step: int, write: Callable[[Path], Any], metrics: Mapping[str, float]) -> str | None:
        final = self.root / checkpoint_dir_name(step)
        self.root.mkdir(parents=True, exist_ok=True)
        # Write aside, then rename: a crash never leaves a half-written directory under its name.
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        write(staging)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        return str(final)
