"""The checkpoint directory format: model.pt, model_config.json, train_state.pt, checkpoint.json.

Decides file names, what each file holds, and what a complete checkpoint is (checkpoint.json
is written last, so a directory without it is an interrupted write). Must not decide when to
checkpoint or where checkpoints live (the training loop and Ray Train do).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from tugboat_workloads.moe.config import MoEConfig
from tugboat_workloads.moe.model import MoETransformer

MODEL_FILE = "model.pt"
CONFIG_FILE = "model_config.json"
TRAIN_STATE_FILE = "train_state.pt"
INFO_FILE = "checkpoint.json"
CHECKPOINT_FILES = (MODEL_FILE, CONFIG_FILE, TRAIN_STATE_FILE, INFO_FILE)


class CheckpointError(Exception):
    """A checkpoint directory is missing a file or holds something unreadable."""


def save_checkpoint(
    directory: str | Path,
    model: MoETransformer,
    *,
    step: int,
    metrics: Mapping[str, float],
    train_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint of an unwrapped (non-DDP) model into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), directory / MODEL_FILE)
    (directory / CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    state = dict(train_state or {})
    state.update(step=step, gate_temperature=float(model.gate_temperature))
    torch.save(state, directory / TRAIN_STATE_FILE)
    info = {"step": step, "metrics": {k: _json_number(v) for k, v in metrics.items()}}
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return directory


def read_checkpoint_info(directory: str | Path) -> dict[str, Any]:
    """checkpoint.json as a dict with an int `step`; raises CheckpointError naming the file."""
    path = Path(directory) / INFO_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (incomplete checkpoint)") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    step = info.get("step") if isinstance(info, dict) else None
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path}: expected an object with an integer 'step'")
    return info


def load_checkpoint(directory: str | Path) -> tuple[MoETransformer, MoEConfig, int]:
    """The model in eval mode, its config and the step it was saved at."""
    directory = Path(directory)
    _require_files(directory)
    step = read_checkpoint_info(directory)["step"]
    config_path = directory / CONFIG_FILE
    try:
        config = MoEConfig.from_dict(json.loads(config_path.read_text()))
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    model = MoETransformer(config)
    model.load_state_dict(_torch_load(directory / MODEL_FILE))
    model.eval()
    return model, config, step


def load_train_state(directory: str | Path) -> dict[str, Any]:
    return _torch_load(Path(directory) / TRAIN_STATE_FILE)


def _require_files(directory: Path) -> None:
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a checkpoint directory")
    missing = [name for name in CHECKPOINT_FILES if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(f"{directory}: missing {', '.join(missing)}")


def _torch_load(path: Path) -> Any:
    try:
        # weights_only: a checkpoint is data; never unpickle arbitrary objects from storage.
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except Exception as exc:  # noqa: BLE001
        # torch.load reports corrupt or truncated bytes through arbitrary types (IndexError from
        # the weights-only unpickler, UnpicklingError, RuntimeError, EOFError...).
        raise CheckpointError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None


def _json_number(value: Any) -> float | None:
    # JSON has no NaN/Infinity; a non-finite metric is recorded as null rather than bad JSON.
    number = float(value)
    return number if math.isfinite(number) else None
