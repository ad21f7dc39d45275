"""What a Prometheus /api/v1/query answer means: a value, no data, NaN, or an error with its message."""

import json
import math

import pytest

from tugboat.analysis.results import ErrorKind, NoData, NotANumber, QueryError, Value, parse_query_response


def ok(result_type: str, result) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}}).encode()


def test_one_series_is_its_value():
    assert parse_query_response(200, ok("vector", [{"metric": {}, "value": [1700000000.5, "0.25"]}])) == (
        Value(0.25, 1700000000.5))


def test_a_scalar_is_its_value_and_infinity_is_a_number():
    assert parse_query_response(200, ok("scalar", [12.0, "3"])) == Value(3.0, 12.0)
    result = parse_query_response(200, ok("vector", [{"metric": {}, "value": [12.0, "+Inf"]}]))
    assert isinstance(result, Value) and math.isinf(result.value)


def test_an_empty_vector_is_no_data_and_nan_is_not_a_number():
    assert parse_query_response(200, ok("vector", [])) == NoData()
    nan = ok("vector", [{"metric": {}, "value": [12.0, "NaN"]}])
    assert parse_query_response(200, nan) == NotANumber(12.0)


def test_several_series_are_an_error_naming_them():
    series = [{"metric": {"track": t}, "value": [1.0, "1"]} for t in ("stable", "canary")]
    result = parse_query_response(200, ok("vector", series))
    assert result.kind == ErrorKind.MULTIPLE_SERIES
    assert '"track": "canary"' in result.message and "sum(" in result.message


def test_a_matrix_is_unexpected():
    assert parse_query_response(200, ok("matrix", [])).kind == ErrorKind.UNEXPECTED_RESULT


@pytest.mark.parametrize("status, body, kind, message", [
    (400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected"},
     ErrorKind.INVALID_QUERY, "1:5: parse error: unexpected"),
    (422, {"status": "error", "errorType": "execution", "error": "many-to-many matching"},
     ErrorKind.EXECUTION, "many-to-many matching"),
    (503, {"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"},
     ErrorKind.TIMEOUT, "query timed out"),
])
def test_prometheus_errors_keep_their_message(status, body, kind, message):
    result = parse_query_response(status, json.dumps(body).encode())
    assert isinstance(result, QueryError) and result.kind == kind and message in result.message


@pytest.mark.parametrize("status, body, kind", [
    (502, b"<html>Bad Gateway</html>", ErrorKind.HTTP),
    (200, b"not json", ErrorKind.BAD_RESPONSE),
    (200, b'{"status": "success", "data": {"resultType": "vector", "result": [{"value": "x"}]}}',
     ErrorKind.BAD_RESPONSE),
])
def test_answers_that_are_not_the_api_are_errors(status, body, kind):
    result = parse_query_response(status, body)
    assert isinstance(result, QueryError) and result.kind == kind
