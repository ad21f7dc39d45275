"""Names derived from any name Kubernetes accepts for our kinds: child names are DNS-1123 labels,
label values fit, and the selectors the controllers list by match the labels the builders write."""

from __future__ import annotations

import re

from hypothesis import example, given, settings

from tests.schema_strategies import object_names
from tugboat.api.model_release import ModelReleaseSpec
from tugboat.api.training_run import TrainingRunSpec
from tugboat.builders.model_release import ReleaseContext, build_sign_job, jobs_selector
from tugboat.builders.naming import child_name, label_value
from tugboat.builders.training_run import TrainingContext, build_config_map, run_selector

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
FUZZ = settings(max_examples=100, derandomize=True, database=None)


@FUZZ
@example("a" * 47 + ".b")  # cut right after the dot: "aaa.-serve-<hash>" on the old naming
@example("ab.cd")
@given(object_names())
def test_child_names_are_dns_labels_for_every_accepted_name(name):
    for role, limit in (("serve", 63), ("canary", 63), ("ray", 40), ("export-tensorrt", 63)):
        child = child_name(name, role, "uid", limit=limit)
        assert len(child) <= limit and DNS_LABEL.match(child), child
        assert child.endswith(f"-{role}-{child[-8:]}")  # the role and hash survive truncation


def test_dots_and_dashes_keep_distinct_children():
    assert child_name("a.b", "serve") != child_name("a-b", "serve")


@FUZZ
@given(object_names())
def test_label_values_fit_for_every_accepted_name(name):
    value = label_value(name)
    assert len(value) <= 63 and LABEL_VALUE.match(value), value


def _owner(name: str) -> dict:
    return {"apiVersion": "tugboat.dev/v1alpha1", "kind": "X",
            "metadata": {"name": name, "namespace": "ns", "uid": "uid-1"}}


def _selected(selector: str, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))


@example("a" * 253)
@FUZZ
@given(object_names())
def test_training_run_selector_matches_what_the_builders_label(name):
    spec = TrainingRunSpec.model_validate({"data": {"uri": "builtin://x", "sha256": "0" * 64}})
    ctx = TrainingContext(_owner(name), 2, "img", "2.60.0", "pool", "cpu", None, "/art")
    labels = build_config_map(spec, ctx)["metadata"]["labels"]
    assert _selected(run_selector(name, 2), labels) and _selected(run_selector(name), labels)
    assert not _selected(run_selector(name, 3), labels)


@example("a" * 253)
@FUZZ
@given(object_names())
def test_model_release_selector_matches_what_the_builders_label(name):
    spec = ModelReleaseSpec.model_validate({"modelLine": "l", "source": {"trainingRun": "r"}})
    job = build_sign_job(spec, ReleaseContext(_owner(name), "img", "pool", "/ckpt", "/art/x"))
    assert _selected(jobs_selector(name), job["metadata"]["labels"])
