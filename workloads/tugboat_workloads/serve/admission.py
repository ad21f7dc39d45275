"""The ordered chain of stateless admission guardrails for one parsed request.

Decides the order (tenant, permission, tools, prompt filter: cheapest first) and that the first
denial ends the chain. The token budget is not here: it holds state and reserves tokens, so the
request flow runs it after this chain admits the request.
"""

from __future__ import annotations

from .caller_access import check_permission, check_tenant, check_tools
from .generate_request import GenerateRequest
from .guardrail_config import GuardrailConfig
from .prompt_filter import check_prompt
from .verdict import Verdict


def admit(request: GenerateRequest, config: GuardrailConfig, deployment_tenant: str) -> list[Verdict]:
    """Every verdict evaluated, in order; only the last one can be a denial."""
    checks = (
        lambda: check_tenant(request.tenant, deployment_tenant),
        lambda: check_permission(request.permission_level, config.permission_level),
        lambda: check_tools(request.tools, config.allowed_tools),
        lambda: check_prompt(request.prompt, config.prompt_filter),
    )
    verdicts: list[Verdict] = []
    for check in checks:
        verdict = check()
        verdicts.append(verdict)
        if verdict.denied:
            break
    return verdicts
