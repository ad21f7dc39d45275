"""Hypothesis strategies drawn from the CRDs' own OpenAPI schemas, biased to their edges.

`valid=True` stays inside every bound the schema states (CEL rules may still refuse); `valid=False`
also draws just-outside values (bound +-1, too long, foreign enum values, wrong types), so that
refusals are exercised too. Object names cover what Kubernetes accepts for a custom resource: DNS
subdomains up to 253 characters, dots, leading digits, exactly 63 and 64 characters.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
# Strings without a pattern: plain, unicode (multi-byte, combining, emoji), blank.
_SAMPLES = ["", " ", "ünïcødé", "名前", "🚢⚓", "a\u0301", "-", "."]
_TEXT = st.one_of(st.text(_CHARS, max_size=40), st.sampled_from(_SAMPLES))
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


def _bounded(strategy, node: dict):
    lo, hi = node.get("minLength", 0), node.get("maxLength")
    return strategy.filter(lambda s: len(s) >= lo and (hi is None or len(s) <= hi))


def _string(node: dict, valid: bool):
    lo, hi = node.get("minLength", 0), node.get("maxLength")
    pattern = node.get("pattern")
    if pattern:
        inside = _bounded(st.from_regex(pattern, fullmatch=True), node)
        edges = [s for s in ("a" * (hi or 1), "0" * max(lo, 1), "a")
                 if lo <= len(s) <= (hi or len(s)) and re.fullmatch(pattern.strip("^$"), s)]
        strategy = st.one_of(inside, st.sampled_from(edges)) if edges else inside
    else:
        long = ["x" * hi, "é" * hi] if hi is not None and hi <= 4096 else ["x" * 300]
        short = [s for s in _SAMPLES if len(s) >= lo]
        strategy = st.one_of(st.text(_CHARS, min_size=lo, max_size=min(hi or 40, 40)),
                             st.sampled_from(short + [s for s in long if len(s) >= lo]))
    if valid:
        return strategy
    outside = [s for s in ("", "x" * ((hi or 64) + 1), "UPPER_case!", "a.-b", "1.2.3", "5Mi5")
               if len(s) < lo or (hi is not None and len(s) > hi) or (pattern and not re.search(pattern, s))]
    return st.one_of(strategy, st.sampled_from(outside)) if outside else strategy


def _integer(node: dict, valid: bool):
    lo, hi = node.get("minimum"), node.get("maximum")
    edges = [v for v in (lo, hi, 0, 1)
             if v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)]
    strategy = st.one_of(st.sampled_from(edges or [0]), st.integers(lo, hi))
    if valid:
        return strategy
    out = [v for v in ((lo - 1) if lo is not None else None, (hi + 1) if hi is not None else None,
                       2**63 - 1) if v is not None]
    return st.one_of(strategy, st.sampled_from(out), st.just("7"))


def _number(node: dict, valid: bool):
    lo, hi = node.get("minimum"), node.get("maximum")
    ex_lo = node.get("exclusiveMinimum") is True
    edges = [v for v in (lo, hi) if v is not None and not (v == lo and ex_lo)]
    inside = st.floats(lo, hi, allow_nan=False, allow_infinity=False, exclude_min=ex_lo)
    strategy = st.one_of(st.sampled_from(edges), inside) if edges else inside
    if valid:
        return strategy
    out = [v for v in (lo, (lo - 0.5) if lo is not None else None, (hi + 0.5) if hi is not None else None)
           if v is not None and (v != lo or ex_lo)]
    return st.one_of(strategy, st.sampled_from(out), st.just(1e308)) if out else strategy


def _array(node: dict, valid: bool, depth: int):
    items = from_schema(node.get("items") or {}, valid, depth + 1)
    lo, hi = node.get("minItems", 0), node.get("maxItems")
    keys = node.get("x-kubernetes-list-map-keys")
    unique = node.get("x-kubernetes-list-type") == "set"
    size = min(hi if hi is not None else 4, lo + 4)
    if keys:
        strategy = st.lists(items, min_size=lo, max_size=size,
                            unique_by=lambda d: tuple(str(d.get(k)) for k in keys) if isinstance(d, dict)
                            else d)
    else:
        strategy = st.lists(items, min_size=lo, max_size=size, unique=unique)
    if valid:
        return strategy
    too_many = (st.lists(items, min_size=hi + 1, max_size=hi + 1)
                if hi is not None and hi <= 20 else None)
    extra = [st.just([])] if lo else []
    if unique:
        extra.append(items.map(lambda v: [v, v]))
    return st.one_of(strategy, *extra, *([too_many] if too_many is not None else []))


def _object(node: dict, valid: bool, depth: int):
    props = node.get("properties")
    if props is None:
        values = from_schema(node.get("additionalProperties") or {"type": "string"}, valid, depth + 1)
        return st.dictionaries(_TEXT, values, max_size=3)
    required = set(node.get("required", []))
    if depth > 6:  # deep optional parts come from the schema's defaults
        props = {k: v for k, v in props.items() if k in required}
    mandatory = {k: from_schema(v, valid, depth + 1) for k, v in props.items() if k in required}
    optional = {k: from_schema(v, valid, depth + 1) for k, v in props.items() if k not in required}
    strategy = st.fixed_dictionaries(mandatory, optional=optional)
    if valid or not required:
        return strategy
    return st.one_of(strategy, strategy.map(lambda d: {k: v for k, v in d.items() if k not in required}))


def from_schema(node: dict, valid: bool = True, depth: int = 0):
    """Values the schema `node` describes (an OpenAPI v3 structural schema, as in the CRDs)."""
    if "enum" in node:
        strategy = st.sampled_from(node["enum"])
        strategy = strategy if valid else st.one_of(strategy, st.just("NotAMember"))
    else:
        kind = node.get("type")
        strategy = {
            "string": lambda: _string(node, valid),
            "integer": lambda: _integer(node, valid),
            "number": lambda: _number(node, valid),
            "boolean": lambda: st.booleans(),
            "array": lambda: _array(node, valid, depth),
            "object": lambda: _object(node, valid, depth),
        }.get(kind, lambda: st.none())()
    return st.one_of(strategy, st.none()) if node.get("nullable") else strategy


def object_names(max_length: int = 253):
    """Names Kubernetes accepts for a custom resource (a DNS-1123 subdomain), edges first."""
    def fill(label: str, length: int) -> str:
        return (label * (length // len(label) + 1))[:length].rstrip(".-") or "a"

    subdomain = st.lists(st.from_regex(_LABEL, fullmatch=True), min_size=1, max_size=6).map(".".join)
    edges = st.sampled_from([
        "a", "0", "9-lives", "a" * 63, "a" * 64, "b" * 62 + ".c", fill("ab.", 253), fill("a-", 253),
        fill("x1.y2-", 120), "a" * 47 + ".b", "a" * 26 + ".bc", "a" * 57 + "." + "b" * 5,
    ])
    return st.one_of(edges, subdomain).filter(lambda n: len(n) <= max_length)
