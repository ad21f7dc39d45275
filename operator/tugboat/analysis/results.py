"""What one instant query answered, as a typed value: a number, no data, NaN, or an error. Pure.

Decides how a Prometheus HTTP API answer (/api/v1/query) maps to a result a check can judge:
a vector of one series or a scalar is a `Value` (±Inf included: it is a number and can breach),
an empty vector is `NoData`, a NaN sample is `NotANumber` (a ratio over a window without
requests), and everything else is a `QueryError` carrying Prometheus' own message: invalid
PromQL, an execution error, several series where a check needs one, a reply that is not the
API's. Must not do I/O, and must not decide verdicts: no data is not a pass here or anywhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_QUERY = "InvalidQuery"  # Prometheus' bad_data: the PromQL does not parse
    EXECUTION = "ExecutionFailed"  # Prometheus accepted the query and failed running it
    MULTIPLE_SERIES = "MultipleSeries"
    UNEXPECTED_RESULT = "UnexpectedResult"  # a matrix or string where a number belongs
    BAD_RESPONSE = "BadResponse"  # not a Prometheus API answer (a proxy's page, bad JSON)
    HTTP = "HTTPError"
    UNREACHABLE = "Unreachable"  # connection refused, no route, DNS
    TIMEOUT = "Timeout"


@dataclass(frozen=True)
class Value:
    value: float
    at: float  # evaluation time, Unix seconds, as Prometheus reports it


@dataclass(frozen=True)
class NoData:
    at: float | None = None


@dataclass(frozen=True)
class NotANumber:
    at: float


@dataclass(frozen=True)
class QueryError:
    kind: ErrorKind
    message: str


QueryResult = Value | NoData | NotANumber | QueryError

_ERROR_TYPES = {"bad_data": ErrorKind.INVALID_QUERY, "execution": ErrorKind.EXECUTION,
                "timeout": ErrorKind.TIMEOUT, "canceled": ErrorKind.EXECUTION,
                "internal": ErrorKind.EXECUTION, "unavailable": ErrorKind.UNREACHABLE}


def parse_query_response(http_status: int, body: bytes) -> QueryResult:
    """An /api/v1/query answer (any HTTP status: Prometheus explains errors in JSON too)."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
        snippet = body[:200].decode(errors="replace").strip()
        kind = ErrorKind.BAD_RESPONSE if http_status == 200 else ErrorKind.HTTP
        return QueryError(kind, f"HTTP {http_status}, not a Prometheus API answer: {snippet!r}")
    if doc["status"] == "error":
        kind = _ERROR_TYPES.get(str(doc.get("errorType")), ErrorKind.HTTP)
        return QueryError(kind, str(doc.get("error") or f"HTTP {http_status}"))
    return _result(doc.get("data") or {})


def _result(data: dict) -> QueryResult:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind != "vector":
        return QueryError(ErrorKind.UNEXPECTED_RESULT,
                          f"the query returned a {kind}, a check needs one number (an instant vector)")
    if not result:
        return NoData()
    if len(result) > 1:
        shown = ", ".join(json.dumps(s.get("metric", {}), sort_keys=True) for s in result[:3])
        more = ", ..." if len(result) > 3 else ""
        return QueryError(ErrorKind.MULTIPLE_SERIES,
                          f"the query returned {len(result)} series ({shown}{more}); "
                          "a check needs one: aggregate them, e.g. with sum(...)")
    return _sample(result[0].get("value"))


def _sample(pair: object) -> QueryResult:
    try:
        at, raw = pair  # type: ignore[misc]
        at, value = float(at), float(raw)
    except (TypeError, ValueError):
        return QueryError(ErrorKind.BAD_RESPONSE, f"malformed sample {pair!r}")
    return NotANumber(at) if math.isnan(value) else Value(value, at)
