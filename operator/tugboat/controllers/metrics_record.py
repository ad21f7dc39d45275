"""Sets the operator's object metrics (metrics.py) from one reconcile: the object as it was read
and the outcome just applied. No API reads of its own; nothing here decides anything.

Counters count transitions between the status read and the status written, so a restarted
operator, which reads the status it wrote before, does not count a step or a rollback twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from prometheus_client import Gauge
from pydantic import ValidationError

from .. import metrics
from ..api.kinds import MODEL_RELEASE, TRAINING_RUN, Kind
from ..api.model_release import RolloutStatus, TargetState
from ..api.training_run import RouterHealthSpec
from ..reconcile.outcome import Outcome
from .engine import current_status

_Key = tuple[str, str | None, str]  # kind, namespace, name


@dataclass(frozen=True)
class TargetChange:
    """What one reconcile did to one rollout target."""

    target_namespace: str
    target: str
    tenant: str
    weight: int
    steps_advanced: int
    rolled_back: bool
    measured: tuple[tuple[str, float, float], ...] = ()  # check, last value, its threshold


def rollout_changes(old: RolloutStatus | None, new: RolloutStatus | None) -> list[TargetChange]:
    """Per target of the new plan: its weight, the steps it advanced and whether it was rolled back
    by this pass (a target new to the plan starts from step 0, not rolled back)."""
    before = {(t.namespace, t.name): t for t in (old.targets if old else [])}
    changes = []
    for t in new.targets if new else []:
        prev = before.get((t.namespace, t.name))
        advanced = t.step - (prev.step if prev else 0)
        was_rolled_back = prev is not None and prev.state == TargetState.ROLLED_BACK
        measured = tuple((c.name, c.last.value, c.last.threshold) for c in t.checks
                         if c.last is not None and c.last.value is not None)
        changes.append(TargetChange(t.namespace, t.name, t.tenant, t.weight, max(advanced, 0),
                                    t.state == TargetState.ROLLED_BACK and not was_rolled_back, measured))
    return changes


def count_phases(phases: dict[_Key, str]) -> Counter:
    return Counter((kind, phase) for (kind, _, _), phase in phases.items())


class Recorder:
    """The phases last decided per object and the label sets each object owns, so a deleted
    object's series go away and a phase nobody is in any more drops to zero."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[_Key, str] = {}
        self._published: set[tuple[str, str]] = set()
        # Per release: the label sets of each per-target gauge it set last time.
        self._owned: dict[_Key, set[tuple[Gauge, tuple[str, ...]]]] = {}

    def record(self, kind: Kind, obj: dict, outcome: Outcome) -> None:
        meta = obj["metadata"]
        key = (kind.kind, meta.get("namespace"), meta["name"])
        with self._lock:
            self._phases[key] = outcome.status.phase or "Unknown"
            self._publish_phases()
            if kind.kind == TRAINING_RUN.kind:
                _training(key, obj, outcome)
            elif kind.kind == MODEL_RELEASE.kind:
                self._rollout(key, kind, obj, outcome)

    def forget(self, kind: Kind, name: str, namespace: str | None) -> None:
        key = (kind.kind, namespace, name)
        with self._lock:
            if self._phases.pop(key, None) is None:
                return
            self._publish_phases()
            for gauge, labels in self._owned.pop(key, set()):
                gauge.remove(*labels)
            if kind.kind == TRAINING_RUN.kind:
                for gauge in _TRAINING_GAUGES:
                    _remove(gauge, namespace or "", name)

    def _publish_phases(self) -> None:
        counts = count_phases(self._phases)
        for labels in self._published | set(counts):
            metrics.OBJECTS.labels(*labels).set(counts.get(labels, 0))
        self._published |= set(counts)

    def _rollout(self, key: _Key, kind: Kind, obj: dict, outcome: Outcome) -> None:
        old = getattr(current_status(kind, obj), "rollout", None)
        namespace, name = key[1] or "", key[2]
        owned = set()
        for c in rollout_changes(old, outcome.status.rollout):
            target = (namespace, name, c.target_namespace, c.target)
            # Both counters exist from 0 on: Prometheus sees the first step or rollback as an increase.
            metrics.ROLLOUT_STEPS.labels(*target).inc(c.steps_advanced)
            metrics.ROLLBACKS.labels(*target).inc(int(c.rolled_back))
            metrics.CANARY_WEIGHT.labels(*target, c.tenant).set(c.weight)
            owned.add((metrics.CANARY_WEIGHT, (*target, c.tenant)))
            for check, value, threshold in c.measured:
                metrics.ANALYSIS_VALUE.labels(*target, check).set(value)
                metrics.ANALYSIS_THRESHOLD.labels(*target, check).set(threshold)
                owned |= {(metrics.ANALYSIS_VALUE, (*target, check)),
                          (metrics.ANALYSIS_THRESHOLD, (*target, check))}
        for gauge, labels in self._owned.get(key, set()) - owned:
            gauge.remove(*labels)
        self._owned[key] = owned


_TRAINING_GAUGES = (metrics.TRAINING_LOSS, metrics.TRAINING_TOKENS, metrics.TRAINING_ENTROPY,
                    metrics.TRAINING_IMBALANCE, metrics.TRAINING_MIN_ENTROPY, metrics.TRAINING_MAX_IMBALANCE)


def _training(key: _Key, obj: dict, outcome: Outcome) -> None:
    labels = (key[1] or "", key[2])
    m = outcome.status.metrics
    values = (m.loss, m.tokens_per_second, m.router_entropy, m.expert_load_imbalance) if m else (None,) * 4
    for gauge, value in zip(_TRAINING_GAUGES[:4], values, strict=True):
        if value is None:
            _remove(gauge, *labels)
        else:
            gauge.labels(*labels).set(value)
    try:  # an invalid spec has no SLOs to show; its Valid condition says why
        slo = RouterHealthSpec.model_validate((obj.get("spec") or {}).get("routerHealth") or {})
    except ValidationError:
        return
    metrics.TRAINING_MIN_ENTROPY.labels(*labels).set(slo.min_entropy)
    metrics.TRAINING_MAX_IMBALANCE.labels(*labels).set(slo.max_imbalance)


def _remove(gauge, *labels: str) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:  # never set
        pass


RECORDER = Recorder()
