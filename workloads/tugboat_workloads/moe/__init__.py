"""The MoE transformer package: config (torch-free), gating, layers, model, checkpoint format.

Names are resolved lazily so `from tugboat_workloads.moe import MoEConfig` does not import
torch (the serving runtime reads model_config.json without it).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MoEConfig": "tugboat_workloads.moe.config",
    "ModelConfigError": "tugboat_workloads.moe.config",
    "MoETransformer": "tugboat_workloads.moe.model",
    "MoEOutput": "tugboat_workloads.moe.model",
    "load_checkpoint": "tugboat_workloads.moe.checkpoint",
    "save_checkpoint": "tugboat_workloads.moe.checkpoint",
    "CheckpointError": "tugboat_workloads.moe.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tugboat_workloads.moe' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
