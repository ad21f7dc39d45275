"""Which AgentDeployments of a model line a release rolls out to. Pure.

A deployment pinned to a release (its own `spec.release`, or its Tenant's
`spec.rollout.pinnedRelease` when that names a release of this line) is never a target: it serves
what it is pinned to. The release's `spec.rollout.selector` narrows the rest by label. Which
namespaces a release may reach at all (tenancy) is decided before this, by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..api.model_release import LabelSelector, SelectorOperator
from .inputs import Target


@dataclass(frozen=True)
class Candidate:
    """An AgentDeployment of the release's model line, with what its Tenant says about rollouts."""

    namespace: str
    name: str
    tenant: str
    labels: Mapping[str, str] = field(default_factory=dict)
    pinned_release: str | None = None  # the AgentDeployment's spec.release
    tenant_pin: str | None = None  # the Tenant's pin, already narrowed to releases of this line
    wave: int = 0
    max_weight: int = 100
    stable_release: str | None = None
    traffic: str | None = None


def matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for req in selector.match_expressions:
        present, value = req.key in labels, labels.get(req.key)
        ok = {SelectorOperator.IN: present and value in req.values,
              SelectorOperator.NOT_IN: not present or value not in req.values,
              SelectorOperator.EXISTS: present,
              SelectorOperator.DOES_NOT_EXIST: not present}[SelectorOperator(req.operator)]
        if not ok:
            return False
    return True


def select_targets(selector: LabelSelector | None, candidates: Sequence[Candidate]) -> tuple[Target, ...]:
    return tuple(Target(namespace=c.namespace, name=c.name, tenant=c.tenant, wave=c.wave,
                        max_weight=c.max_weight, stable_release=c.stable_release, traffic=c.traffic)
                 for c in candidates
                 if c.pinned_release is None and c.tenant_pin is None and matches(selector, c.labels))


def describe(selector: LabelSelector) -> str:
    """A selector as kubectl writes it: `team=a,tier in (gold,silver),!beta`."""
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    for req in selector.match_expressions:
        op = SelectorOperator(req.operator)
        parts.append({SelectorOperator.IN: f"{req.key} in ({','.join(req.values)})",
                      SelectorOperator.NOT_IN: f"{req.key} notin ({','.join(req.values)})",
                      SelectorOperator.EXISTS: req.key,
                      SelectorOperator.DOES_NOT_EXIST: f"!{req.key}"}[op])
    return ",".join(parts) or "(everything)"
