"""The MoE model's shape and routing knobs, and their camelCase wire form.

Decides which keys a model spec may carry, their defaults and their valid ranges. It must not
import torch: the operator and the serving runtime read `model_config.json` without it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ModelConfigError(ValueError):
    """A model spec field is missing its type or range; `field` names the camelCase key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"model.{field}: {message}")
        self.field = field


# snake_case attribute -> camelCase wire key; the order is the order of to_dict().
_WIRE_KEYS = {
    "layers": "layers",
    "d_model": "dModel",
    "heads": "heads",
    "experts": "experts",
    "top_k": "topK",
    "d_ff": "dFF",
    "capacity_factor": "capacityFactor",
    "aux_loss_coef": "auxLossCoef",
    "router_z_loss_coef": "routerZLossCoef",
    "gate_temperature": "gateTemperature",
    "vocab_size": "vocabSize",
    "seq_len": "seqLen",
}
_INT_FIELDS = {"layers", "d_model", "heads", "experts", "top_k", "d_ff", "vocab_size", "seq_len"}


@dataclass(frozen=True)
class MoEConfig:
    layers: int = 2
    d_model: int = 128
    heads: int = 4
    experts: int = 8
    top_k: int = 2
    d_ff: int = 256
    capacity_factor: float = 1.25
    aux_loss_coef: float = 0.01
    router_z_loss_coef: float = 0.001
    gate_temperature: float = 1.0
    vocab_size: int = 64
    seq_len: int = 32

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            _require_int(name, getattr(self, name))
        for name in set(_WIRE_KEYS) - _INT_FIELDS:
            _require_number(name, getattr(self, name))
        _validate_ranges(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MoEConfig:
        """Build from camelCase keys; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, Mapping):
            raise ModelConfigError("<root>", f"expected an object, got {type(data).__name__}")
        by_wire = {wire: attr for attr, wire in _WIRE_KEYS.items()}
        unknown = sorted(set(data) - set(by_wire))
        if unknown:
            raise ModelConfigError(unknown[0], f"unknown key (allowed: {', '.join(by_wire)})")
        return cls(**{by_wire[key]: value for key, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {wire: getattr(self, attr) for attr, wire in _WIRE_KEYS.items()}

    def replace(self, **changes: Any) -> MoEConfig:
        return dataclasses.replace(self, **changes)


def _require_int(name: str, value: Any) -> None:
    # bool is an int subclass; `true` for a layer count is a spec mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelConfigError(_WIRE_KEYS[name], f"must be an integer, got {value!r}")


def _require_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelConfigError(_WIRE_KEYS[name], f"must be a finite number, got {value!r}")


def _validate_ranges(cfg: MoEConfig) -> None:
    checks = [
        ("layers", cfg.layers >= 1, "must be >= 1"),
        ("d_model", cfg.d_model >= 1, "must be >= 1"),
        ("heads", cfg.heads >= 1, "must be >= 1"),
        ("d_model", cfg.d_model % max(cfg.heads, 1) == 0,
         f"must be divisible by heads ({cfg.heads})"),
        ("experts", cfg.experts >= 1, "must be >= 1"),
        ("top_k", 1 <= cfg.top_k <= cfg.experts, f"must be between 1 and experts ({cfg.experts})"),
        ("d_ff", cfg.d_ff >= 1, "must be >= 1"),
        ("capacity_factor", cfg.capacity_factor > 0, "must be > 0"),
        ("aux_loss_coef", cfg.aux_loss_coef >= 0, "must be >= 0"),
        ("router_z_loss_coef", cfg.router_z_loss_coef >= 0, "must be >= 0"),
        ("gate_temperature", cfg.gate_temperature > 0, "must be > 0"),
        ("vocab_size", cfg.vocab_size >= 2, "must be >= 2"),
        ("seq_len", cfg.seq_len >= 2, "must be >= 2"),
    ]
    for name, ok, message in checks:
        if not ok:
            raise ModelConfigError(_WIRE_KEYS[name], f"{message}, got {getattr(cfg, name)!r}")
