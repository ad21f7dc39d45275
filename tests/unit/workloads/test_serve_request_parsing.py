"""Parsing of POST /v1/generate bodies and headers."""

import json

import pytest

from tugboat_workloads.serve.generate_request import (
    MAX_BODY_BYTES,
    RequestError,
    parse_generate_request,
    request_id_from,
)

JSON = {"Content-Type": "application/json"}


def parse(body, headers=None):
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    return parse_generate_request(raw, {**JSON, **(headers or {})}, max_tokens_limit=16)


def test_full_request_and_headers():
    request = parse({"prompt": "3 7 11", "maxTokens": 2,
                     "tools": [{"name": "search", "args": {"q": "x"}}, {"name": "calculator"}]},
                    {"Authorization": "Bearer k", "X-Permission-Level": "Standard"})
    assert (request.prompt, request.max_tokens, request.tools) == ("3 7 11", 2, ("search", "calculator"))
    assert (request.authorization, request.permission_level) == ("Bearer k", "Standard")


def test_defaults_are_least_privilege_and_tenant_headers_are_not_read():
    request = parse({"prompt": "1 2"}, {"X-Tenant": "globex", "X-Cost-Center": "cc-free"})
    assert (request.max_tokens, request.tools, request.authorization) == (4, (), None)
    assert request.permission_level == "ReadOnly"
    assert not hasattr(request, "tenant") and not hasattr(request, "cost_center")


@pytest.mark.parametrize("body, headers, field", [
    (b"{not json", {}, "body"),
    (b"\xff\xfe", {}, "body"),
    ([1, 2], {}, "body"),
    ({}, {}, "prompt"),
    ({"prompt": 3}, {}, "prompt"),
    ({"prompt": "   "}, {}, "prompt"),
    ({"prompt": "1 2", "maxTokens": 0}, {}, "maxTokens"),
    ({"prompt": "1 2", "maxTokens": 17}, {}, "maxTokens"),
    ({"prompt": "1 2", "maxTokens": "4"}, {}, "maxTokens"),
    ({"prompt": "1 2", "maxTokens": True}, {}, "maxTokens"),
    ({"prompt": "1 2", "tools": {"name": "search"}}, {}, "tools"),
    ({"prompt": "1 2", "tools": [{"args": {}}]}, {}, "tools[0].name"),
    ({"prompt": "1 2", "tools": [{"name": "s", "args": []}]}, {}, "tools[0].args"),
    ({"prompt": "1 2", "temperature": 1}, {}, "temperature"),
    ({"prompt": "1 2"}, {"X-Permission-Level": "Root"}, "X-Permission-Level"),
])
def test_malformed_requests_name_the_field(body, headers, field):
    with pytest.raises(RequestError) as err:
        parse(body, headers)
    assert err.value.field == field
    assert str(err.value).startswith(field)


@pytest.mark.parametrize("body, headers, field, status", [
    (b'{"prompt": "1 2"}', {"Content-Type": "text/plain"}, "Content-Type", 415),
    (b'{"prompt": "1 2"}', {"Content-Type": ""}, "Content-Type", 415),
    (b'{"prompt": "1 2"}', {"Content-Type": "application/json; charset=latin-1"}, "Content-Type", 415),
    (None, {}, "body", 413),
    (b"[" * 100_000, {}, "body", 400),                                     # nesting beyond recursion
    (b'{"prompt": "1 2", "maxTokens": ' + b"9" * 5000 + b"}", {}, "body", 400),  # digit limit
    ('{"prompt": "1 2"}'.encode("utf-16"), {}, "body", 400),             # JSON must be UTF-8
    (b'{"prompt": "1 2 \\ud800"}', {}, "prompt", 400),                   # lone surrogate
])
def test_malformed_bytes_are_a_4xx_naming_the_field(body, headers, field, status):
    with pytest.raises(RequestError) as err:
        parse(body, headers)
    assert (err.value.field, err.value.status) == (field, status)
    assert str(err.value).startswith(field)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON",
                                          'application/json;charset="UTF-8"'])
def test_content_type_parameters_and_case_are_accepted(content_type):
    assert parse({"prompt": "1 2"}, {"Content-Type": content_type}).prompt == "1 2"


def test_a_body_cut_off_at_the_limit_says_the_limit():
    with pytest.raises(RequestError, match=f"larger than {MAX_BODY_BYTES} bytes"):
        parse(None)


def test_request_id_is_echoed_when_safe_and_generated_otherwise():
    assert request_id_from({"X-Request-Id": "abc-123"}) == "abc-123"
    generated = {request_id_from({}), request_id_from({"X-Request-Id": "bad id\n"}),
                 request_id_from({"X-Request-Id": "x" * 200})}
    assert len(generated) == 3
    assert all(len(rid) == 32 for rid in generated)
