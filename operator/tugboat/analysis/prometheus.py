"""Instant queries against a Prometheus server over its HTTP API (urllib: the operator image
stays small). I/O only, on the controllers' side; never called from a pure decision.

Decides the request (POST /api/v1/query, form-encoded, so long user queries fit; a server-side
`timeout` one second under the client's so Prometheus answers before the socket gives up) and
turns every failure into a `QueryError` value instead of an exception: invalid PromQL, HTTP
errors, connection refused and timeouts all come back bounded by `timeout` seconds.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from ..metrics import ANALYSIS_ERRORS, ANALYSIS_QUERIES
from .results import ErrorKind, QueryError, QueryResult, parse_query_response

DEFAULT_TIMEOUT = 5.0


class Prometheus:
    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"--prometheus-url must be an http(s) URL, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str, at: float | None = None) -> QueryResult:
        """Evaluate `expr` at `at` (Unix seconds; Prometheus' now when None)."""
        ANALYSIS_QUERIES.inc()
        result = self._query(expr, at)
        if isinstance(result, QueryError):
            ANALYSIS_ERRORS.labels(result.kind.value).inc()
        return result

    def _query(self, expr: str, at: float | None) -> QueryResult:
        # Prometheus durations take whole units only ("4.000s" is refused): milliseconds.
        server_timeout_ms = int(max(self.timeout - 1.0, self.timeout / 2) * 1000)
        form = {"query": expr, "timeout": f"{server_timeout_ms}ms"}
        if at is not None:
            form["time"] = f"{at:.3f}"
        request = urllib.request.Request(
            f"{self.url}/api/v1/query", data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return parse_query_response(response.status, response.read())
        except urllib.error.HTTPError as err:  # 400 bad_data, 422 execution, 503 timeout: JSON
            with err:
                return parse_query_response(err.code, err.read())
        except TimeoutError:
            return self._timed_out()
        except urllib.error.URLError as err:
            if isinstance(err.reason, TimeoutError):  # timed out while connecting
                return self._timed_out()
            return QueryError(ErrorKind.UNREACHABLE, f"Prometheus at {self.url}: {_reason(err.reason)}")
        except OSError as err:  # a reset mid-answer
            return QueryError(ErrorKind.UNREACHABLE, f"Prometheus at {self.url}: {_reason(err)}")


    def _timed_out(self) -> QueryError:
        return QueryError(ErrorKind.TIMEOUT,
                          f"Prometheus at {self.url} did not answer within {self.timeout:g}s")


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)
