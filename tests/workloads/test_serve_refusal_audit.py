"""Every request leaves exactly one audit line, the ones aiohttp refuses itself included: unknown
paths, wrong methods and bytes the HTTP parser rejects, over real HTTP and a raw socket against
the real serving process. Probes are not audited."""

import socket

import pytest

from tests.workloads.serve_fixtures import (  # noqa: F401
    ServeProcess,
    http_get,
    http_post_raw,
    signed_artifacts,
)

GUARDRAILS = {"costCenter": "cc-123", "successDetector": {"kind": "Task"}}


@pytest.fixture(scope="module")
def server(signed_artifacts, tmp_path_factory):  # noqa: F811
    proc = ServeProcess(tmp_path_factory.mktemp("refusals"), signed_artifacts.trained,
                        signed_artifacts.public_key, GUARDRAILS).wait_ready()
    yield proc
    assert proc.stop() == 0, proc.stderr()


def raw_exchange(url: str, data: bytes) -> bytes:
    """Send these bytes as they are and read the reply until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def new_lines(proc, before: int) -> list[dict]:
    return proc.audit_lines()[before:]


@pytest.mark.parametrize("method, path, status, reason", [
    ("GET", "/no-such-path", 404, "NotFound"),
    ("POST", "/v1/nothing", 404, "NotFound"),
    ("GET", "/v1/generate", 405, "MethodNotAllowed"),
    ("POST", "/healthz", 405, "MethodNotAllowed"),
])
def test_routing_refusals_leave_one_deny_line(server, method, path, status, reason):
    before = len(server.audit_lines())
    request_id = f"route-{status}-{path.strip('/').replace('/', '-')}"
    reply = raw_exchange(server.url, f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: "
                         f"{request_id}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode())
    assert reply.startswith(f"HTTP/1.1 {status}".encode()), reply[:200]
    [line] = new_lines(server, before)
    assert (line["requestId"], line["decision"], line["guardrail"], line["reason"], line["status"]) == (
        request_id, "deny", "request", reason, status)
    assert (line["tenant"], line["costCenter"], line["caller"], line["promptHmacSha256"]) == (
        "acme", "cc-123", None, None)


@pytest.mark.parametrize("case, data", [
    ("garbage-request-line", b"NOT HTTP AT ALL\r\n\r\n"),
    ("bad-version", b"GET / HTTP/9.x\r\nHost: x\r\n\r\n"),
    ("bad-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo Colon Here\r\n\r\n"),
    ("oversized-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"),
    ("oversized-request-line", b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
])
def test_parser_refusals_leave_one_deny_line(server, case, data):
    before = len(server.audit_lines())
    reply = raw_exchange(server.url, data)
    assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n")[0], reply[:200]
    [line] = new_lines(server, before)
    assert (line["decision"], line["guardrail"], line["reason"], line["status"]) == (
        "deny", "request", "BadRequest", 400)
    assert len(line["requestId"]) == 32      # the parser never read an id to echo: a fresh one


def test_probes_leave_no_line_and_generate_exactly_one(server):
    before = len(server.audit_lines())
    for path in ("/healthz", "/readyz", "/metrics"):
        assert http_get(server.url + path)[0] == 200
    assert new_lines(server, before) == []
    code, _, _ = http_post_raw(server.url, "/v1/generate", b"{}", {"X-Request-Id": "gen-once"})
    assert code == 415   # no Content-Type: refused by the generate flow, which audits it itself
    assert [line["requestId"] for line in new_lines(server, before)] == ["gen-once"]


def test_a_connection_dropped_before_a_request_line_leaves_nothing(server):
    before = len(server.audit_lines())
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /heal")
    assert http_get(server.url + "/healthz")[0] == 200     # still serving
    assert new_lines(server, before) == []
