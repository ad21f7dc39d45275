"""Parse one POST /v1/generate request (JSON body and headers) into a typed value.

Decides what a well-formed request is: at most MAX_BODY_BYTES of UTF-8 JSON sent as
application/json, body {"prompt": str, "maxTokens": int (default 4), "tools": [{"name": str,
"args": {...}}]} and the X-Request-Id, Authorization and X-Permission-Level headers. Tenant
and cost center never come from a header: the caller's key and the Tenant's config decide them.
Raises `RequestError` naming the field or header, with its 4xx status: whatever bytes arrive, a
malformed request is the caller's error, never a 500. Must not apply any guardrail policy: a
well-formed request for a forbidden tool still parses.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from .guardrail_config import PERMISSION_LEVELS

DEFAULT_MAX_TOKENS = 4
# Prompts are capped far below this by the prompt filter; the limit stops oversized uploads early.
MAX_BODY_BYTES = 1 << 20
# Callers may bring their own id for tracing; bound it so it is safe in logs and labels.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestError(ValueError):
    """A malformed request; `field` names the body field or header, `status` is 400, 413 or 415."""

    def __init__(self, field: str, message: str, status: int = 400,
                 reason: str = "InvalidRequest"):
        super().__init__(f"{field}: {message}")
        self.field, self.status, self.reason = field, status, reason


@dataclass(frozen=True)
class GenerateRequest:
    prompt: str
    max_tokens: int
    tools: tuple[str, ...]
    authorization: str | None
    permission_level: str


def request_id_from(headers: Mapping[str, str]) -> str:
    """The caller's X-Request-Id when it is safe to echo, else a fresh one."""
    given = headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def parse_generate_request(body: bytes | None, headers: Mapping[str, str],
                           max_tokens_limit: int) -> GenerateRequest:
    """`body` None: the server stopped reading it at MAX_BODY_BYTES."""
    if body is None:
        raise RequestError("body", f"larger than {MAX_BODY_BYTES} bytes", 413, "BodyTooLarge")
    _require_json_content_type(headers.get("Content-Type", ""))
    doc = _json_document(body)
    if not isinstance(doc, dict):
        raise RequestError("body", "must be a JSON object")
    unknown = sorted(set(doc) - {"prompt", "maxTokens", "tools"})
    if unknown:
        raise RequestError(unknown[0], "unknown field (known: maxTokens, prompt, tools)")
    return GenerateRequest(
        prompt=_prompt(doc.get("prompt")),
        max_tokens=_max_tokens(doc.get("maxTokens", DEFAULT_MAX_TOKENS), max_tokens_limit),
        tools=_tools(doc.get("tools", [])),
        authorization=headers.get("Authorization"),
        permission_level=_permission(headers.get("X-Permission-Level") or "ReadOnly"),
    )


def _require_json_content_type(content_type: str) -> None:
    media_type, _, params = content_type.partition(";")
    charset = params.partition("charset=")[2].strip().strip('"').lower()
    if media_type.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise RequestError("Content-Type", f"must be application/json (UTF-8), got {content_type!r}",
                           415, "UnsupportedMediaType")


def _json_document(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise RequestError("body", f"not UTF-8: {err.reason} at byte {err.start}") from None
    except RecursionError:
        raise RequestError("body", "JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, and integers beyond Python's digit limit
        raise RequestError("body", f"not valid JSON: {err}") from None


def _prompt(raw: object) -> str:
    if not isinstance(raw, str):
        raise RequestError("prompt", "required, must be a string")
    if not raw.strip():
        raise RequestError("prompt", "must not be empty")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate escape such as "\ud800"
        raise RequestError("prompt", f"not valid Unicode: {err.reason} at character {err.start}") from None
    return raw


def _max_tokens(raw: object, limit: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= limit:
        raise RequestError("maxTokens", f"must be an integer from 1 to {limit}, got {raw!r}")
    return raw


def _tools(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise RequestError("tools", "must be a list")
    names = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise RequestError(f"tools[{i}].name", "each tool needs a string name")
        if not isinstance(tool.get("args", {}), dict):
            raise RequestError(f"tools[{i}].args", "must be an object")
        names.append(tool["name"])
    return tuple(names)


def _permission(raw: str) -> str:
    if raw not in PERMISSION_LEVELS:
        raise RequestError("X-Permission-Level",
                           f"must be one of {', '.join(PERMISSION_LEVELS)}, got {raw!r}")
    return raw
