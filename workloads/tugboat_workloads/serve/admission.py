"""The ordered chain of stateless admission guardrails for one parsed request.

Decides the order (caller identity, permission, tools, prompt filter: cheapest first) and that
the first denial ends the chain. The token budget is not here: it holds state and reserves
tokens, so the request flow runs it after this chain admits the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from .caller_access import check_permission, check_tools, identify
from .caller_keys import ApiKey, ApiKeys
from .generate_request import GenerateRequest
from .guardrail_config import GuardrailConfig
from .prompt_filter import check_prompt
from .verdict import Verdict


@dataclass(frozen=True)
class Admission:
    verdicts: tuple[Verdict, ...]  # every verdict evaluated, in order; only the last may deny
    caller: ApiKey | None          # the key the request was identified by, if any

    @property
    def denial(self) -> Verdict | None:
        return self.verdicts[-1] if self.verdicts[-1].denied else None


def admit(request: GenerateRequest, config: GuardrailConfig, tenant: str, keys: ApiKeys) -> Admission:
    identity, caller = identify(request.authorization, keys, tenant)
    if caller is None:
        return Admission((identity,), None)
    checks = (
        lambda: check_permission(request.permission_level, caller, config.permission_level),
        lambda: check_tools(request.tools, config.allowed_tools),
        lambda: check_prompt(request.prompt, config.prompt_filter),
    )
    verdicts = [identity]
    for check in checks:
        verdicts.append(check())
        if verdicts[-1].denied:
            break
    return Admission(tuple(verdicts), caller)
