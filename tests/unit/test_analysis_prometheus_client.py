"""The Prometheus client's failures are values within its timeout: nothing listening, a server
that never answers, a proxy's error page. (The real Prometheus: tests/integration/test_dev_prometheus.py.)"""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import REGISTRY

from tugboat.analysis.prometheus import Prometheus
from tugboat.analysis.results import ErrorKind, QueryError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_an_unreachable_error_at_once():
    started = time.monotonic()
    result = Prometheus(f"http://127.0.0.1:{closed_port()}", timeout=2).query("up")
    assert isinstance(result, QueryError) and result.kind == ErrorKind.UNREACHABLE
    assert "connection refused" in result.message
    assert time.monotonic() - started < 1.0


def test_a_server_that_never_answers_times_out_within_the_timeout():
    with socket.socket() as listener:  # accepts (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        started = time.monotonic()
        result = Prometheus(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5).query("up")
    assert isinstance(result, QueryError) and result.kind == ErrorKind.TIMEOUT
    assert 0.4 < time.monotonic() - started < 2.0


def test_an_error_page_that_is_not_the_api_is_an_http_error():
    class BadGateway(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(502)
            self.end_headers()
            self.wfile.write(b"<html>upstream down</html>")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), BadGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = Prometheus(f"http://127.0.0.1:{server.server_address[1]}/").query("up")
    finally:
        server.shutdown()
        server.server_close()
    assert result.kind == ErrorKind.HTTP
    assert "HTTP 502" in result.message and "upstream down" in result.message


@pytest.mark.parametrize("url", ["127.0.0.1:9090", "ftp://prometheus", "http://"])
def test_the_url_must_be_http(url):
    with pytest.raises(ValueError, match="http"):
        Prometheus(url)


def test_every_query_and_every_failure_is_counted():
    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    queries, refused = sample("tugboat_analysis_queries_total"), sample(
        "tugboat_analysis_query_errors_total", kind="Unreachable")
    Prometheus(f"http://127.0.0.1:{closed_port()}", timeout=2).query("up")
    assert sample("tugboat_analysis_queries_total") == queries + 1
    assert sample("tugboat_analysis_query_errors_total", kind="Unreachable") == refused + 1
