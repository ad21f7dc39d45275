"""Prompt filter guardrail: reject prompts that are too long or match a deny pattern.

Decides on the raw prompt text only. A denial message names the rule (length or pattern index),
never the prompt itself, because messages end up in logs that must not hold tenant prompts.
"""

from __future__ import annotations

from .guardrail_config import PromptFilterConfig
from .verdict import Verdict, allow, deny

GUARDRAIL = "prompt_filter"


def check_prompt(prompt: str, config: PromptFilterConfig) -> Verdict:
    if len(prompt) > config.max_prompt_chars:
        return deny(GUARDRAIL, 400, "PromptTooLong",
                    f"prompt has {len(prompt)} characters, the limit is {config.max_prompt_chars}")
    for index, pattern in enumerate(config.deny_patterns):
        if pattern.search(prompt):
            return deny(GUARDRAIL, 400, "PromptDenied",
                        f"prompt matches promptFilter.denyPatterns[{index}]")
    return allow(GUARDRAIL)
