"""Label selectors as the informers need them: equality (`k=v`, `k==v`, `k!=v`) and existence
(`k`, `!k`) terms, comma-joined. Set-based terms (`in`, `notin`) are not parsed: a selector holding
one is `None` here, and its list goes to the API server. Pure."""

from __future__ import annotations

import re

Term = tuple[str, str, str | None]  # (key, "=" | "!=" | "exists" | "!exists", value)
_TERM = re.compile(r"^(!?)([A-Za-z0-9./_-]+)(?:\s*(==|=|!=)\s*([A-Za-z0-9._-]*))?$")


def parse(selector: str | None) -> frozenset[Term] | None:
    """The terms of `selector` (empty for none), or None if it holds a term we do not parse."""
    terms = set()
    for raw in (selector or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        found = _TERM.match(raw)
        if found is None:
            return None
        bang, key, op, value = found.groups()
        if op is None:
            terms.add((key, "!exists" if bang else "exists", None))
        elif bang:
            return None  # "!k=v" is not a selector
        else:
            terms.add((key, "!=" if op == "!=" else "=", value))
    return frozenset(terms)


def _holds(labels: dict, term: Term) -> bool:
    key, op, value = term
    if op == "=":
        return labels.get(key) == value
    if op == "!=":
        return labels.get(key) != value
    return (key in labels) == (op == "exists")


def matches(labels: dict | None, terms: frozenset[Term]) -> bool:
    labels = labels or {}
    return all(_holds(labels, t) for t in terms)


def narrows(requested: frozenset[Term] | None, base: frozenset[Term] | None) -> bool:
    """Does every object `requested` selects also match `base` (so a cache of `base` answers it)?
    True when each base term is implied by a requested one; conservative otherwise."""
    if requested is None or base is None:
        return False
    return all(t in requested or _implied(t, requested) for t in base)


def _implied(term: Term, requested: frozenset[Term]) -> bool:
    key, op, _ = term
    # k=v implies k exists (the only implication our selectors need).
    return op == "exists" and any(k == key and o == "=" for k, o, _ in requested)
