"""Every property of every generated CRD carries a description, so `kubectl explain` says
what each field does (issue #9)."""

from __future__ import annotations

import pytest
import yaml

from tugboat.api.crd import crd_files
from tugboat.api.kinds import KINDS


def undescribed(node: dict, path: str) -> list[str]:
    """Paths of properties without a description, through nested objects, list items and maps."""
    missing = []
    for name, prop in (node.get("properties") or {}).items():
        here = f"{path}.{name}"
        if not prop.get("description"):
            missing.append(here)
        missing += undescribed(prop, here)
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(node.get(key), dict):
            missing += undescribed(node[key], path + suffix)
    return missing


def _root(kind) -> dict:
    crd = yaml.safe_load(crd_files()[f"tugboat.dev_{kind.plural}.yaml"])
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_property_has_a_description(kind):
    # metadata may carry nothing but its type (the API server refuses more): it is ObjectMeta.
    assert undescribed(_root(kind), kind.kind) == [f"{kind.kind}.metadata"]


def test_the_walk_finds_nested_items_and_maps():
    schema = {"properties": {
        "a": {"description": "ok", "properties": {"b": {"type": "string"}}},
        "l": {"description": "ok", "items": {"properties": {"c": {"type": "string"}}}},
        "m": {"description": "ok", "additionalProperties": {"properties": {"d": {}}}},
        "e": {"type": "integer"},
    }}
    assert undescribed(schema, "X") == ["X.a.b", "X.l[].c", "X.m{}.d", "X.e"]


def test_rollout_fields_say_unit_and_default():
    rollout = _root(next(k for k in KINDS if k.kind == "ModelRelease"))["properties"]["spec"][
        "properties"]["rollout"]["properties"]
    interval = rollout["analysis"]["properties"]["checks"]["items"]["properties"]["interval"]
    assert "default 15s" in interval["description"]
    assert "percent" in rollout["steps"]["items"]["properties"]["weight"]["description"]
