"""Targets: pinned deployments stay out, the selector narrows the rest."""

from __future__ import annotations

import pytest

from tugboat.api.model_release import LabelSelector
from tugboat.rollout.targets import Candidate, matches, select_targets

LABELS = {"tier": "gold", "region": "eu"}


@pytest.mark.parametrize(("selector", "ok"), [
    (None, True),
    ({}, True),
    ({"matchLabels": {"tier": "gold"}}, True),
    ({"matchLabels": {"tier": "silver"}}, False),
    ({"matchExpressions": [{"key": "region", "operator": "In", "values": ["eu", "us"]}]}, True),
    ({"matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["eu"]}]}, False),
    ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, False),
    ({"matchLabels": {"tier": "gold"},
      "matchExpressions": [{"key": "region", "operator": "NotIn", "values": ["eu"]}]}, False),
])
def test_matches(selector, ok):
    sel = None if selector is None else LabelSelector.model_validate(selector)
    assert matches(sel, LABELS) is ok


def test_pinned_and_unselected_are_not_targets():
    cands = [Candidate("a", "free", "ta", LABELS, wave=1, max_weight=30, stable_release="v1"),
             Candidate("a", "own-pin", "ta", LABELS, pinned_release="v1"),
             Candidate("b", "tenant-pin", "tb", LABELS, tenant_pin="v1"),
             Candidate("c", "other", "tc", {"tier": "silver"})]
    (t,) = select_targets(LabelSelector(match_labels={"tier": "gold"}), cands)
    assert (t.namespace, t.name, t.wave, t.max_weight, t.stable_release) == ("a", "free", 1, 30, "v1")
