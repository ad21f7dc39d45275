"""The training entrypoint's CONFIG.json: parsing, defaults and validation.

Decides which keys exist (camelCase on the wire, snake_case here), their defaults and ranges.
Every error names the offending field path (e.g. `training.batchSize`), so the operator can
surface it as InvalidConfig. Must not touch the filesystem beyond reading the config file,
and must not import torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tugboat_workloads.moe.config import ModelConfigError, MoEConfig

PRECISIONS = ("fp32", "bf16")
GUARD_ACTIONS = ("TemperatureBump", "NoiseInjection", "Both", "None")


class InvalidConfigError(ValueError):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class DataSpec:
    uri: str
    sha256: str | None = None
    roots: tuple[str, ...] = ()  # the only directories a file:// dataset may resolve into


@dataclass(frozen=True)
class TrainingSpec:
    steps: int = 200
    batch_size: int = 16  # global: split evenly across workers
    learning_rate: float = 0.003
    precision: str = "fp32"
    checkpoint_interval: int = 50
    seed: int = 0


@dataclass(frozen=True)
class ResourcesSpec:
    workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 1


@dataclass(frozen=True)
class RouterHealthSpec:
    max_imbalance: float = 1.6
    min_entropy: float = 1.1
    action: str = "TemperatureBump"


@dataclass(frozen=True)
class MlflowSpec:
    tracking_uri: str
    experiment: str = "tugboat"


@dataclass(frozen=True)
class TrainConfig:
    name: str
    namespace: str
    storage_path: str
    data: DataSpec
    uid: str = ""
    attempt: int = 0
    model: MoEConfig = field(default_factory=MoEConfig)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    router_health: RouterHealthSpec = field(default_factory=RouterHealthSpec)
    mlflow: MlflowSpec | None = None  # absent: train without tracking (local experiments)

    @property
    def run_label(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def per_worker_batch(self) -> int:
        return self.training.batch_size // self.resources.workers


def load_train_config(path: str | Path) -> TrainConfig:
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InvalidConfigError(str(path), f"cannot read config ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise InvalidConfigError(str(path), f"not valid JSON ({exc})") from None
    return parse_train_config(raw)


def parse_train_config(raw: Any) -> TrainConfig:
    top = _Object(raw, "<config>")
    top.allow({"name", "namespace", "uid", "attempt", "model", "data", "training", "resources",
               "routerHealth", "mlflow", "storagePath"})
    storage = top.string("storagePath", required=True)
    if not storage.startswith("/"):
        raise InvalidConfigError("storagePath", f"must be an absolute path, got {storage!r}")
    config = TrainConfig(
        name=top.string("name", required=True),
        namespace=top.string("namespace", required=True),
        uid=top.string("uid", default=""),
        attempt=top.integer("attempt", default=0, minimum=0),
        storage_path=storage,
        model=_model(top.get("model", {})),
        data=_data(top.child("data", required=True)),
        training=_training(top.child("training")),
        resources=_resources(top.child("resources")),
        router_health=_router_health(top.child("routerHealth")),
        mlflow=_mlflow(top.child("mlflow")) if top.get("mlflow") is not None else None,
    )
    if config.training.batch_size % config.resources.workers:
        raise InvalidConfigError(
            "training.batchSize",
            f"{config.training.batch_size} is not divisible by resources.workers "
            f"({config.resources.workers})",
        )
    return config


def _model(raw: Any) -> MoEConfig:
    try:
        return MoEConfig.from_dict(raw)
    except ModelConfigError as exc:
        raise InvalidConfigError(f"model.{exc.field}", str(exc).split(": ", 1)[1]) from None


def _data(obj: _Object) -> DataSpec:
    obj.allow({"uri", "sha256", "roots"})
    digest = obj.string("sha256", default=None)
    roots = obj.get("roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) and r.startswith("/") for r in roots):
        raise InvalidConfigError("data.roots", f"must be a list of absolute paths, got {roots!r}")
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest)):
        raise InvalidConfigError("data.sha256", f"must be 64 hex digits, got {digest!r}")
    return DataSpec(uri=obj.string("uri", required=True), sha256=digest.lower() if digest else None,
                    roots=tuple(roots))


def _training(obj: _Object) -> TrainingSpec:
    obj.allow({"steps", "batchSize", "learningRate", "precision", "checkpointInterval", "seed"})
    d = TrainingSpec()
    precision = obj.string("precision", default=d.precision)
    if precision not in PRECISIONS:
        raise InvalidConfigError("training.precision", f"must be one of {PRECISIONS}, got {precision!r}")
    return TrainingSpec(
        steps=obj.integer("steps", default=d.steps, minimum=1),
        batch_size=obj.integer("batchSize", default=d.batch_size, minimum=1),
        learning_rate=obj.number("learningRate", default=d.learning_rate, check=lambda v: v > 0, rule="> 0"),
        precision=precision,
        checkpoint_interval=obj.integer("checkpointInterval", default=d.checkpoint_interval, minimum=1),
        seed=obj.integer("seed", default=d.seed, minimum=0),
    )


def _resources(obj: _Object) -> ResourcesSpec:
    obj.allow({"workers", "useGpu", "cpusPerWorker"})
    d = ResourcesSpec()
    return ResourcesSpec(
        workers=obj.integer("workers", default=d.workers, minimum=1),
        use_gpu=obj.boolean("useGpu", default=d.use_gpu),
        cpus_per_worker=obj.number("cpusPerWorker", default=d.cpus_per_worker,
                                   check=lambda v: v > 0, rule="> 0"),
    )


def _router_health(obj: _Object) -> RouterHealthSpec:
    obj.allow({"maxImbalance", "minEntropy", "action"})
    d = RouterHealthSpec()
    action = obj.string("action", default=d.action)
    if action not in GUARD_ACTIONS:
        raise InvalidConfigError("routerHealth.action", f"must be one of {GUARD_ACTIONS}, got {action!r}")
    return RouterHealthSpec(
        max_imbalance=obj.number("maxImbalance", default=d.max_imbalance,
                                 check=lambda v: v >= 1, rule=">= 1"),
        min_entropy=obj.number("minEntropy", default=d.min_entropy, check=lambda v: v >= 0, rule=">= 0"),
        action=action,
    )


def _mlflow(obj: _Object) -> MlflowSpec:
    obj.allow({"trackingUri", "experiment"})
    return MlflowSpec(
        tracking_uri=obj.string("trackingUri", required=True),
        experiment=obj.string("experiment", default="tugboat"),
    )


_MISSING = object()


class _Object:
    """A JSON object under a field path, with typed getters that raise InvalidConfigError."""

    def __init__(self, raw: Any, path: str):
        if not isinstance(raw, Mapping):
            raise InvalidConfigError(path, f"expected an object, got {type(raw).__name__}")
        self.raw, self.path = raw, path

    def _key(self, key: str) -> str:
        return key if self.path == "<config>" else f"{self.path}.{key}"

    def allow(self, keys: set[str]) -> None:
        unknown = sorted(set(self.raw) - keys)
        if unknown:
            allowed = ", ".join(sorted(keys))
            raise InvalidConfigError(self._key(unknown[0]), f"unknown key (allowed: {allowed})")

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def child(self, key: str, required: bool = False) -> _Object:
        if key not in self.raw and required:
            raise InvalidConfigError(self._key(key), "required")
        return _Object(self.raw.get(key, {}), self._key(key))

    def _value(self, key: str, default: Any, required: bool) -> Any:
        if key in self.raw and self.raw[key] is not None:
            return self.raw[key]
        if required:
            raise InvalidConfigError(self._key(key), "required")
        return default

    def string(self, key: str, default: Any = _MISSING, required: bool = False) -> Any:
        value = self._value(key, default, required)
        if value is not default and (not isinstance(value, str) or not value):
            raise InvalidConfigError(self._key(key), f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self._value(key, default, False)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidConfigError(self._key(key), f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, default: float, check: Callable[[float], bool], rule: str) -> float:
        value = self._value(key, default, False)
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
        if not ok or not check(value):
            raise InvalidConfigError(self._key(key), f"must be a finite number {rule}, got {value!r}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._value(key, default, False)
        if not isinstance(value, bool):
            raise InvalidConfigError(self._key(key), f"must be true or false, got {value!r}")
        return value
