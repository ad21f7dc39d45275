"""Audit lines for the requests aiohttp refuses before any handler of ours sees them.

The generate flow writes the audit line of every request that reaches it, and the probes
(/healthz, /readyz, /metrics) are deliberately not audited. Everything else, an unknown path
(404), a wrong method (405) or bytes the HTTP parser rejects (400: a malformed request line or
header, headers over the size limit), is answered by aiohttp itself. `mark_handled` records that a
request reached one of our handlers; the access logger, which aiohttp calls once per response
(parser errors included), writes a deny line for every response no handler accounted for.

What cannot be audited: a connection closed before a whole request line arrived, or one that
breaks off before aiohttp answers, produces no response, so there is nothing to log.
"""

from __future__ import annotations

import time
from http import HTTPStatus

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from .audit_log import build_audit_record
from .generate_request import request_id_from
from .runtime import Runtime

HANDLED = "tugboat.handled"


@web.middleware
async def mark_handled(request: web.Request, handler) -> web.StreamResponse:
    """Mark requests that a route of ours answered (404/405 raise before this returns)."""
    response = await handler(request)
    if request.match_info.http_exception is None:
        request[HANDLED] = True
    return response


def refusal_reason(status: int) -> str:
    """404 -> NotFound, 405 -> MethodNotAllowed, 400 -> BadRequest: the status in CamelCase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return f"Http{status}"
    return "".join(word[:1].upper() + word[1:] for word in phrase.replace("-", " ").split())


def refusal_logger(rt: Runtime) -> type[AbstractAccessLogger]:
    """An access-logger class (aiohttp builds it itself) bound to this runtime's audit log."""

    class RefusalAuditLogger(AbstractAccessLogger):
        def log(self, request: BaseRequest, response: web.StreamResponse, time_taken: float) -> None:
            if rt.audit is None or request.get(HANDLED):
                return
            rt.audit.write(build_audit_record(
                request_id=request_id_from(request.headers), tenant=rt.settings.tenant,
                cost_center=rt.config.cost_center, caller=None, prompt=None, key=rt.audit_key,
                decision="deny", guardrail="request", reason=refusal_reason(response.status),
                status=response.status, tokens=0, model=None, release=rt.settings.release,
                track=rt.settings.track, timestamp=time.time()))

    return RefusalAuditLogger

