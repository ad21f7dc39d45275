"""The life of one POST /v1/generate request, from raw body to reply, metrics and audit line.

Order: parse -> admission chain (caller key, permission, tools, prompt filter) -> token budget
reservation -> dev faults (off unless the process was started with them) -> primary model ->
success score -> fallback guardrail -> settle the budget (with the tokens generated).
Every guardrail decision is counted; every request gets exactly one audit line (when guardrails
are on) and one requests_total increment. Must not know aiohttp: it returns a plain `Reply`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tugboat_workloads.task import decode_tokens, encode_prompt

from .admission import admit
from .artifact_loader import LoadedModel
from .audit_log import build_audit_record
from .caller_keys import ApiKey
from .fallback_policy import FALLBACK, KEEP, REFUSE, decide_fallback
from .fault_injection import InjectedFault, inject_faults
from .generate_request import GenerateRequest, RequestError, parse_generate_request, request_id_from
from .onnx_model import RouterCounts
from .runtime import Runtime
from .verdict import Verdict

log = logging.getLogger("tugboat.serve")


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    """What happened, for the reply, the metrics and the audit line alike."""

    status: int
    decision: str
    body: dict
    guardrail: str | None = None
    reason: str = ""
    tokens: int = 0
    generated: int = 0  # by the models, for latency per generated token
    model: str | None = None
    retry_after: int | None = None


async def handle_generate(rt: Runtime, body: bytes | None, headers: Mapping[str, str]) -> Reply:
    """`body` None: larger than the server reads (a 413)."""
    started = time.perf_counter()
    request_id = request_id_from(headers)
    request: GenerateRequest | None = None
    caller: ApiKey | None = None
    try:
        if not rt.ready:
            outcome = _error(503, "NotReady", "the model is not loaded yet (see /readyz)")
        else:
            request = parse_generate_request(body, headers,
                                             max_tokens_limit=rt.primary.generator.seq_len)
            outcome, caller = await _decide(rt, request)
    except RequestError as err:
        outcome = _denied(Verdict("request", "deny", err.status, err.reason, str(err)))
    except InjectedFault as err:
        outcome = _error(500, "InjectedFault", str(err))
    except Exception:  # a bug or an ONNX Runtime failure must still answer and be counted
        log.exception("request %s failed", request_id)
        outcome = _error(500, "InternalError", "inference failed; see the server log")
    rt.metrics.request_done(outcome.status, time.perf_counter() - started, outcome.generated)
    _audit(rt, request_id, request, caller, outcome)
    return _reply(rt, request_id, outcome)


async def _decide(rt: Runtime, request: GenerateRequest) -> tuple[_Outcome, ApiKey | None]:
    """The outcome, and the key that identified the caller (None without guardrails)."""
    if not rt.guardrails_on:
        return await _answer(rt, request, _prompt_tokens(rt, request)), None
    admission = admit(request, rt.config, rt.settings.tenant, rt.api_keys)
    for verdict in admission.verdicts:
        rt.metrics.decision(verdict.guardrail, verdict.decision)
    if admission.denial is not None:
        return _denied(admission.denial), admission.caller
    prompt_tokens = _prompt_tokens(rt, request)
    verdict, reservation = rt.budget.reserve(rt.settings.tenant, request.max_tokens)
    rt.metrics.decision(verdict.guardrail, verdict.decision)
    if verdict.denied:
        return _denied(verdict), admission.caller
    outcome = None
    try:
        outcome = await _answer(rt, request, prompt_tokens)
        return outcome, admission.caller
    finally:
        # The models' work is the cost: a fallback's discarded primary attempt and a refused
        # answer count, though the caller gets fewer tokens (or none) back.
        rt.budget.settle(reservation, outcome.generated if outcome else 0)


def _prompt_tokens(rt: Runtime, request: GenerateRequest) -> list[int]:
    try:
        return encode_prompt(request.prompt, rt.primary.generator.vocab_size)
    except ValueError as err:
        raise RequestError("prompt", str(err)) from err


@dataclass(frozen=True)
class _Served:
    model: str
    completion: str
    score: float
    confidence: float


async def _answer(rt: Runtime, request: GenerateRequest, prompt_tokens: list[int]) -> _Outcome:
    await inject_faults(rt.settings)
    primary = await _generate(rt, rt.primary, request, prompt_tokens)
    rt.metrics.router_health(primary.imbalance, primary.entropy)
    rt.metrics.routed(primary.router.expert_tokens, primary.router.entropy_nats)
    served = _Served("primary", primary.completion, primary.score, primary.confidence)
    generated = primary.generated
    verdict = None
    if rt.guardrails_on:
        verdict = decide_fallback(primary.confidence, primary.score, rt.config.fallback)
        rt.metrics.decision(verdict.guardrail, verdict.decision)
        if verdict.decision == FALLBACK:
            fallback = await _generate(rt, rt.fallback, request, prompt_tokens)
            served = _Served("fallback", fallback.completion, fallback.score, fallback.confidence)
            generated += fallback.generated
        elif verdict.decision == REFUSE:
            served = _Served("refused", "", 0.0, primary.confidence)
    tokens = len(served.completion.split())
    rt.metrics.tokens(tokens)
    rt.metrics.score(served.score)
    body = {"completion": served.completion, "tokens": tokens, "score": served.score,
            "confidence": served.confidence, "model": served.model,
            "routerHealth": {"imbalance": primary.imbalance, "entropy": primary.entropy}}
    if verdict is None or verdict.decision == KEEP:
        return _Outcome(200, KEEP, body, tokens=tokens, generated=generated, model=served.model)
    body["fallbackReason"] = verdict.reason
    return _Outcome(200, verdict.decision, body, guardrail=verdict.guardrail,
                    reason=verdict.reason, tokens=tokens, generated=generated, model=served.model)


@dataclass(frozen=True)
class _Scored:
    completion: str
    score: float
    confidence: float
    imbalance: float
    entropy: float
    generated: int
    router: RouterCounts


async def _generate(rt: Runtime, model: LoadedModel, request: GenerateRequest,
                    prompt_tokens: list[int]) -> _Scored:
    # ONNX Runtime releases the GIL, so the event loop keeps answering while a model runs.
    generation = await asyncio.get_running_loop().run_in_executor(
        rt.executor, model.generator.generate, prompt_tokens, request.max_tokens)
    completion = decode_tokens(list(generation.tokens))
    return _Scored(completion, rt.scorer(request.prompt, completion), generation.confidence,
                   generation.imbalance, generation.entropy, len(generation.tokens),
                   generation.router)


def _denied(verdict: Verdict) -> _Outcome:
    body = {"error": {"guardrail": verdict.guardrail, "reason": verdict.reason,
                      "message": verdict.message}}
    return _Outcome(verdict.status, "deny", body, guardrail=verdict.guardrail,
                    reason=verdict.reason, retry_after=verdict.retry_after)


def _error(status: int, reason: str, message: str) -> _Outcome:
    return _Outcome(status, "error", {"error": {"reason": reason, "message": message}}, reason=reason)


def _reply(rt: Runtime, request_id: str, outcome: _Outcome) -> Reply:
    body = {"requestId": request_id, **outcome.body, "release": rt.settings.release,
            "track": rt.settings.track}
    headers = {"X-Request-Id": request_id}
    if outcome.retry_after is not None:
        headers["Retry-After"] = str(outcome.retry_after)
    if outcome.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tugboat"'
    return Reply(outcome.status, body, headers)


def _audit(rt: Runtime, request_id: str, request: GenerateRequest | None, caller: ApiKey | None,
           outcome: _Outcome) -> None:
    if rt.audit is None:
        return
    rt.audit.write(build_audit_record(
        request_id=request_id, tenant=rt.settings.tenant, cost_center=rt.config.cost_center,
        caller=caller.name if caller else None,
        prompt=request.prompt if request else None, key=rt.audit_key,
        decision=outcome.decision, guardrail=outcome.guardrail, reason=outcome.reason,
        status=outcome.status, tokens=outcome.tokens, model=outcome.model,
        release=rt.settings.release, track=rt.settings.track, timestamp=time.time(),
    ))
