"""Router health numbers from one step's router statistics, and the end-of-run SLO verdict.

Decides how per-layer expert loads and entropies become the scalars the SLO talks about: the
mean over layers (as the field's baselines in WORKLOADS.md are measured), with the worst layer
kept alongside for dashboards. Pure and torch-free; must not decide interventions
(router_guard.py does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RouterSample:
    imbalance: float  # mean over layers of (max expert load / mean expert load)
    entropy: float  # mean over layers of the mean gate entropy, nats
    dropped_fraction: float
    expert_load: tuple[float, ...]  # per expert, averaged over layers
    worst_imbalance: float = 0.0  # the most imbalanced layer
    worst_entropy: float = 0.0  # the lowest-entropy layer


@dataclass(frozen=True)
class SloVerdict:
    healthy: bool
    imbalance: float
    entropy: float
    dropped_fraction: float
    message: str


def load_imbalance(load: Sequence[float]) -> float:
    """max/mean of one layer's expert load; 1.0 is perfectly balanced, E is total collapse."""
    mean = sum(load) / len(load)
    return max(load) / mean if mean > 0 else float("inf")


def summarize_router(expert_load: Sequence[Sequence[float]], entropy: Sequence[float],
                     dropped_fraction: float) -> RouterSample:
    if not expert_load or len(expert_load) != len(entropy):
        raise ValueError("expert_load and entropy need one entry per layer")
    experts = len(expert_load[0])
    per_expert = tuple(sum(layer[e] for layer in expert_load) / len(expert_load) for e in range(experts))
    imbalances = [load_imbalance(layer) for layer in expert_load]
    return RouterSample(
        imbalance=sum(imbalances) / len(imbalances),
        entropy=sum(entropy) / len(entropy),
        dropped_fraction=float(dropped_fraction),
        expert_load=per_expert,
        worst_imbalance=max(imbalances),
        worst_entropy=min(entropy),
    )


def final_window(samples: Sequence[RouterSample], steps: int) -> Sequence[RouterSample]:
    """The samples the final SLO is judged on: the last tenth of the run, at least 10 steps.
    A single step is too noisy; the whole run would punish the untrained start."""
    size = max(10, steps // 10)
    return samples[-size:]


def judge_slo(samples: Sequence[RouterSample], max_imbalance: float, min_entropy: float) -> SloVerdict:
    if not samples:
        raise ValueError("no router samples to judge")
    imbalance = sum(s.imbalance for s in samples) / len(samples)
    entropy = sum(s.entropy for s in samples) / len(samples)
    dropped = sum(s.dropped_fraction for s in samples) / len(samples)
    problems = []
    if not imbalance < max_imbalance:
        problems.append(f"expert load imbalance {imbalance:.3f} >= {max_imbalance}")
    if not entropy > min_entropy:
        problems.append(f"router entropy {entropy:.3f} <= {min_entropy}")
    message = "; ".join(problems) or (
        f"router healthy: imbalance {imbalance:.3f} < {max_imbalance}, entropy {entropy:.3f} > {min_entropy}")
    return SloVerdict(not problems, imbalance, entropy, dropped, message)
