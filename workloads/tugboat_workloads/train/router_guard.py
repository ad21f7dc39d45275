"""The router-health guard: when the router breaches its SLO over a short window, soften the
gates (temperature bump) and/or randomise them (gate noise), as the spec's `action` says.

A pure state machine: (policy, state, step, sample) -> (state, intervention or None). Every
worker runs it on the same all-reduced samples, so all replicas take the same decision without
extra communication. Must not touch the model or MLflow itself (the training loop applies and
logs what it returns).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tugboat_workloads.train.router_health import RouterSample

_BUMPS_TEMPERATURE = {"TemperatureBump", "Both"}
_INJECTS_NOISE = {"NoiseInjection", "Both"}


@dataclass(frozen=True)
class GuardPolicy:
    max_imbalance: float
    min_entropy: float
    action: str
    window: int = 10  # steps averaged before judging; also the cool-down after an intervention
    temperature_factor: float = 1.25
    max_temperature: float = 4.0
    noise_step: float = 0.1
    max_noise: float = 1.0


@dataclass(frozen=True)
class GuardState:
    temperature: float
    noise_std: float = 0.0
    recent: tuple[tuple[float, float], ...] = ()  # (imbalance, entropy) of the current window
    interventions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "noise_std": self.noise_std,
                "recent": [list(pair) for pair in self.recent], "interventions": self.interventions}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuardState:
        return cls(temperature=float(data["temperature"]), noise_std=float(data["noise_std"]),
                   recent=tuple((float(a), float(b)) for a, b in data["recent"]),
                   interventions=int(data["interventions"]))


@dataclass(frozen=True)
class Intervention:
    step: int
    reason: str
    action: str
    imbalance: float
    entropy: float
    temperature: float  # after the intervention
    noise_std: float  # after the intervention

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def observe(policy: GuardPolicy, state: GuardState, step: int,
            sample: RouterSample) -> tuple[GuardState, Intervention | None]:
    recent = (state.recent + ((sample.imbalance, sample.entropy),))[-policy.window:]
    waiting = dataclasses.replace(state, recent=recent)
    if len(recent) < policy.window or policy.action == "None":
        return waiting, None
    imbalance = sum(pair[0] for pair in recent) / len(recent)
    entropy = sum(pair[1] for pair in recent) / len(recent)
    reason = _breach(policy, imbalance, entropy)
    if reason is None:
        return waiting, None
    temperature, noise = _escalate(policy, state)
    if (temperature, noise) == (state.temperature, state.noise_std):
        return waiting, None  # already at the limits: nothing left to change
    intervention = Intervention(step, reason, policy.action, imbalance, entropy, temperature, noise)
    return GuardState(temperature, noise, (), state.interventions + 1), intervention


def _breach(policy: GuardPolicy, imbalance: float, entropy: float) -> str | None:
    reasons = []
    if imbalance > policy.max_imbalance:
        reasons.append(f"expert load imbalance {imbalance:.3f} > {policy.max_imbalance}")
    if entropy < policy.min_entropy:
        reasons.append(f"router entropy {entropy:.3f} < {policy.min_entropy}")
    return "; ".join(reasons) or None


def _escalate(policy: GuardPolicy, state: GuardState) -> tuple[float, float]:
    temperature, noise = state.temperature, state.noise_std
    if policy.action in _BUMPS_TEMPERATURE:
        temperature = min(policy.max_temperature, temperature * policy.temperature_factor)
    if policy.action in _INJECTS_NOISE:
        noise = min(policy.max_noise, round(noise + policy.noise_step, 6))
    return temperature, noise
