"""Process-wide handles the handlers use: the API client and the CLI options, set once at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..controllers.settings import Settings
from ..kube.client import Kube


@dataclass(frozen=True)
class Options:
    kubeconfig: str | None = None
    priority: int = 0
    standalone: bool = False
    peering_lifetime: int = 30
    settings: Settings = field(default_factory=Settings)


_state: dict = {}


def init(kube: Kube, options: Options) -> None:
    _state["kube"], _state["options"] = kube, options


def kube() -> Kube:
    return _state["kube"]


def options() -> Options:
    return _state.get("options", Options())
