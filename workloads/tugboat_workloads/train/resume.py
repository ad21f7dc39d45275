"""Where a (re)started attempt resumes: the newest complete, loadable checkpoint under the
TrainingRun's storagePath, whichever earlier attempt wrote it.

Decides what counts as resumable (all four files, readable, same model shape as the spec) and
which one wins (highest step). An unreadable checkpoint is skipped with a warning rather than
retried forever; a shape mismatch is an InvalidConfig, never a silent fresh start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tugboat_workloads.moe.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_train_state,
    read_checkpoint_info,
)
from tugboat_workloads.moe.config import MoEConfig
from tugboat_workloads.train.config import InvalidConfigError

log = logging.getLogger(__name__)
CHECKPOINT_GLOBS = ("checkpoint_step_*", "*/checkpoint_step_*")  # LocalSession, Ray Train run dirs


@dataclass(frozen=True)
class ResumePoint:
    directory: str
    step: int
    metrics: dict[str, Any]


def find_resume_point(storage_path: str | Path, model: MoEConfig) -> ResumePoint | None:
    for step, directory, info in _candidates(Path(storage_path)):
        try:
            _, saved, _ = load_checkpoint(directory)
            load_train_state(directory)
        except CheckpointError as exc:
            log.warning("skipping unusable checkpoint %s: %s", directory, exc)
            continue
        if saved != model:
            raise InvalidConfigError("model", _mismatch(directory, saved, model))
        return ResumePoint(str(directory), step, dict(info.get("metrics") or {}))
    return None


def _candidates(root: Path) -> list[tuple[int, Path, dict[str, Any]]]:
    """Complete checkpoints, newest step first (modification time breaks ties)."""
    found = []
    for pattern in CHECKPOINT_GLOBS:
        for directory in root.glob(pattern):
            try:
                info = read_checkpoint_info(directory)
            except CheckpointError:
                continue  # interrupted write: checkpoint.json is the last file written
            found.append((info["step"], directory.stat().st_mtime, directory, info))
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [(step, directory, info) for step, _, directory, info in found]


def _mismatch(directory: Path, saved: MoEConfig, wanted: MoEConfig) -> str:
    saved_d, wanted_d = saved.to_dict(), wanted.to_dict()
    fields = [f"{k} {saved_d[k]!r} != {wanted_d[k]!r}" for k in wanted_d if saved_d[k] != wanted_d[k]]
    return f"checkpoint {directory} was trained with a different model ({', '.join(fields)}); " \
           "use a new storagePath to train a different model"
