"""Spec variants derived from a CRD's structural schema: every enum value, every numeric bound.

Nothing here is a hand list: a new enum value or bound in the API models becomes a new case. The
walk starts from a base spec defaulted as the API server defaults it (`materialize`), so each case
changes one field (or, for corners, every bounded number of one object at once) of an object the
server would store. Lists of objects are varied through their first item: a subtree reached by no
item (an empty list, an absent optional object) is reported as unreached, never skipped quietly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Case:
    assignments: tuple[tuple[Path, Any], ...]
    why: str  # enum, minimum, maximum, corner-minimum, corner-maximum

    @property
    def id(self) -> str:
        if len(self.assignments) > 1:
            return f"{_dotted(self.assignments[0][0][:-1])}:{self.why}"
        path, value = self.assignments[0]
        return f"{_dotted(path)}={value!r}"

    def apply(self, instance: dict) -> dict:
        out = copy.deepcopy(instance)
        for path, value in self.assignments:
            node = out
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = copy.deepcopy(value)
        return out


def _dotted(path: Path) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


def materialize(schema: dict, instance: Any) -> Any:
    """`instance` with every schema default filled in, as the API server stores it."""
    if isinstance(instance, dict) and "properties" in schema:
        out = dict(instance)
        for key, sub in schema["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = materialize(sub, out[key])
        return out
    if isinstance(instance, list) and "items" in schema:
        return [materialize(schema["items"], item) for item in instance]
    return instance


def _bounds(schema: dict) -> Iterator[tuple[str, float]]:
    integer = schema.get("type") == "integer"
    for key, direction in (("minimum", math.inf), ("maximum", -math.inf)):
        if key not in schema:
            continue
        value = schema[key]
        if schema.get(f"exclusive{key.capitalize()}"):
            value = value + (1 if direction > 0 else -1) if integer else math.nextafter(value, direction)
        yield key, int(value) if integer else float(value)


def _has_cases(schema: dict) -> bool:
    if "enum" in schema or any(True for _ in _bounds(schema)):
        return True
    children = list(schema.get("properties", {}).values()) + ([schema["items"]] if "items" in schema else [])
    return any(_has_cases(c) for c in children)


def walk(schema: dict, instance: Any) -> tuple[list[Case], list[str]]:
    """Cases for a materialized `instance`, and the dotted paths of subtrees no instance reaches."""
    cases: list[Case] = []
    unreached: list[str] = []
    _walk(schema, instance, (), cases, unreached)
    return cases, unreached


def _walk(schema: dict, instance: Any, path: Path, cases: list[Case], unreached: list[str]) -> None:
    for value in schema.get("enum", ()):
        cases.append(Case(((path, value),), "enum"))
    for key, value in _bounds(schema):
        cases.append(Case(((path, value),), key))
    if "properties" in schema:
        _walk_object(schema, instance, path, cases, unreached)
    elif "items" in schema:
        items = schema["items"]
        for value in items.get("enum", ()):
            cases.append(Case(((path, [value]),), "enum"))
        if "properties" in items and _has_cases(items):
            if isinstance(instance, list) and instance:
                _walk(items, instance[0], (*path, 0), cases, unreached)
            else:
                unreached.append(_dotted((*path, 0)))


def _walk_object(schema: dict, instance: Any, path: Path, cases: list[Case], unreached: list[str]) -> None:
    numbers = {}
    for key, sub in schema["properties"].items():
        if "properties" in sub or "properties" in sub.get("items", {}):  # needs an instance to vary
            if isinstance(instance, dict) and key in instance:
                _walk(sub, instance[key], (*path, key), cases, unreached)
            elif _has_cases(sub):
                unreached.append(_dotted((*path, key)))
            continue
        _walk(sub, None, (*path, key), cases, unreached)  # set whole: a scalar or a list of them
        numbers[key] = dict(_bounds(sub))
    # Corners: bounds meet each other (topK at its maximum needs experts at theirs).
    for bound in ("minimum", "maximum"):
        corner = tuple(((*path, k), b[bound]) for k, b in numbers.items() if bound in b)
        if len(corner) > 1:
            cases.append(Case(corner, f"corner-{bound}"))


def rule_messages(schema: Any) -> set[str]:
    """Messages of every CEL rule in a schema: what a refused in-range value must be told."""
    if isinstance(schema, list):
        return set().union(*(rule_messages(s) for s in schema)) if schema else set()
    if not isinstance(schema, dict):
        return set()
    own = {r["message"] for r in schema.get("x-kubernetes-validations", [])}
    return own.union(*(rule_messages(v) for k, v in schema.items() if k != "x-kubernetes-validations"))
