"""Compile prompt-filter deny patterns with RE2, the engine that matches in linear time.

Decides the pattern dialect (RE2 syntax, case-insensitive) and what an invalid pattern's error
says. Python's backtracking `re` is not an option: one tenant pattern such as `(a+)+$` would
stall the event loop for minutes on a short prompt. The operator calls `compile_deny_pattern`
at apply time too, so a pattern the runtime would refuse never reaches a pod.
"""

from __future__ import annotations

from typing import Protocol

import re2


class Pattern(Protocol):
    """What the filter uses of a compiled RE2 pattern."""

    pattern: str

    def search(self, text: str) -> object | None: ...


class DenyPatternError(ValueError):
    """Not RE2 syntax (backreferences and lookaround are not), or too large to compile."""


def _options() -> re2.Options:
    options = re2.Options()
    # The filter matches case-folded text (prompt_filter); folding the pattern too keeps
    # `IGNORE` and `Ignore` patterns meaningful.
    options.case_sensitive = False
    # RE2 logs every rejected pattern to stderr itself; the caller reports the error once.
    options.log_errors = False
    return options


def compile_deny_pattern(pattern: str) -> Pattern:
    try:
        return re2.compile(pattern, _options())
    except re2.error as err:
        detail = err.args[0] if err.args else err
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise DenyPatternError(f"not a valid RE2 pattern: {detail}") from None
