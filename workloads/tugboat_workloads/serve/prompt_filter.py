"""Prompt filter guardrail: reject prompts that are too long or match a deny pattern.

Decides which spellings of a prompt the deny patterns see. A filter that reads only the raw text
is bypassed by spellings the model consumes alike: full-width or other compatibility forms, case,
combining marks, zero-width and other format characters, and whatever the task's tokenizer maps
(any Unicode whitespace splits words; `int` reads '+13', '013', '1_3' and Arabic-Indic digits as
13). So every pattern runs on the raw text, on a canonical form (NFKC, case-folded, combining
marks and format characters removed, whitespace collapsed) and, when the prompt tokenizes, on the
token form the model receives ("13 7"); any match denies. Patterns are RE2 (deny_pattern), so a
match is linear in the prompt's length. A denial message names the rule (length or pattern
index), never the prompt itself, because messages end up in logs that must not hold prompts.
"""

from __future__ import annotations

import unicodedata

from tugboat_workloads.task import PromptError, decode_tokens, encode_prompt

from .guardrail_config import PromptFilterConfig
from .verdict import Verdict, allow, deny

GUARDRAIL = "prompt_filter"
# Mn/Me: combining marks ("i\u0301gnore"); Cf: format characters (zero-width space and joiners,
# soft hyphen, bidi controls, tag characters) that render as nothing.
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})


def canonical_text(prompt: str) -> str:
    if prompt.isascii():  # the common case: NFKC and NFD leave ASCII alone, it has no marks
        return " ".join(prompt.lower().split())
    return _canonical_unicode(prompt)


def _canonical_unicode(prompt: str) -> str:
    folded = unicodedata.normalize("NFKC", prompt).casefold()
    kept = "".join(ch for ch in unicodedata.normalize("NFD", folded)
                   if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    return " ".join(unicodedata.normalize("NFKC", kept).split())


def token_form(prompt: str) -> str | None:
    """The prompt as the model's tokens, or None when it does not tokenize (the request is then
    refused as malformed after admission)."""
    try:
        return decode_tokens(encode_prompt(prompt))
    except PromptError:
        return None


def prompt_forms(prompt: str) -> tuple[str, ...]:
    forms = [prompt, canonical_text(prompt), token_form(prompt)]
    return tuple(dict.fromkeys(form for form in forms if form is not None))


def check_prompt(prompt: str, config: PromptFilterConfig) -> Verdict:
    if len(prompt) > config.max_prompt_chars:
        return deny(GUARDRAIL, 400, "PromptTooLong",
                    f"prompt has {len(prompt)} characters, the limit is {config.max_prompt_chars}")
    forms = prompt_forms(prompt) if config.deny_patterns else ()
    for index, pattern in enumerate(config.deny_patterns):
        if any(pattern.search(form) for form in forms):
            return deny(GUARDRAIL, 400, "PromptDenied",
                        f"prompt matches promptFilter.denyPatterns[{index}]")
    return allow(GUARDRAIL)
