"""Built-in analysis queries: every one parses in Prometheus' own parser (promtool), filters by
the slice's labels with values escaped, and aggregates to one series."""

import shutil
import subprocess

import pytest
import yaml

from tugboat.analysis.queries import (
    HIGHER_IS_WORSE,
    Builtin,
    Slice,
    builtin_query,
    escape_label_value,
    window_literal,
)

CANARY = Slice(release="moe-arith-v2", track="canary", tenant="team-a", agent_deployment="arith-agent")
HOSTILE = Slice(release='v2"} or vector(1) or {x="', tenant="a\\b\nc\x01é")


def promtool_check(exprs: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    """Each expression as a recording rule: `promtool check rules` parses it with the real parser."""
    rules = {"groups": [{"name": "analysis", "rules": [
        {"record": f"tugboat:{name}", "expr": expr} for name, expr in exprs.items()]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) must be on PATH"
    return subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60)


def test_every_builtin_query_parses_in_prometheus(tmp_path):
    exprs = {f"{check.value}_{i}": builtin_query(check, where, 300)
             for check in Builtin for i, where in enumerate((CANARY, HOSTILE, Slice()))}
    done = promtool_check(exprs, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(exprs)} rules found" in done.stdout


def test_the_parser_really_checks(tmp_path):
    done = promtool_check({"broken": builtin_query(Builtin.ERROR_RATE, CANARY, 60)[:-3]}, tmp_path)
    assert done.returncode != 0 and "parse error" in done.stdout + done.stderr


def test_queries_filter_by_every_given_label_and_window():
    query = builtin_query("ErrorRate", CANARY, 120)
    matchers = 'release="moe-arith-v2",track="canary",tenant="team-a",agent_deployment="arith-agent"'
    assert query == (f'(sum(increase(tugboat_requests_total{{{matchers},code=~"5.."}}[120s])) '
                     f'or vector(0)) / sum(increase(tugboat_requests_total{{{matchers}}}[120s]))')
    assert builtin_query(Builtin.REQUEST_COUNT, Slice(track="stable"), 30) == (
        'sum(increase(tugboat_requests_total{track="stable"}[30s]))')
    assert builtin_query(Builtin.TOKEN_COUNT, Slice(), 30) == "sum(increase(tugboat_tokens_total[30s]))"


def test_the_stable_track_of_the_same_slice():
    assert CANARY.with_track("stable") == Slice("moe-arith-v2", "stable", "team-a", "arith-agent")


@pytest.mark.parametrize("value, escaped", [
    ("plain-v1", "plain-v1"),
    ('say "hi"', 'say \\"hi\\"'),
    ("back\\slash", "back\\\\slash"),
    ("two\nlines\ttab", "two\\nlines\\x09tab"),
    ("é😀", "é😀"),
])
def test_label_values_are_escaped(value, escaped):
    assert escape_label_value(value) == escaped


@pytest.mark.parametrize("seconds", [0, -5, 1.5, True, "5m"])
def test_a_window_is_whole_seconds(seconds):
    with pytest.raises(ValueError, match="whole number of seconds"):
        window_literal(seconds)


def test_unknown_builtin_and_bad_quantile_are_refused():
    with pytest.raises(ValueError):
        builtin_query("Vibes", CANARY, 60)
    from tugboat.analysis.queries import latency_p95
    with pytest.raises(ValueError, match="quantile"):
        latency_p95(CANARY, 60, quantile=95)


def test_direction_of_each_check():
    assert Builtin.SUCCESS_SCORE not in HIGHER_IS_WORSE and Builtin.ROUTER_ENTROPY not in HIGHER_IS_WORSE
    assert {Builtin.ERROR_RATE, Builtin.LATENCY_P95, Builtin.LATENCY_PER_TOKEN,
            Builtin.ROUTER_IMBALANCE} <= HIGHER_IS_WORSE
