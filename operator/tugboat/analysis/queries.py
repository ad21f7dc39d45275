"""The built-in analysis queries: PromQL over the serving runtime's own metrics. Pure.

Decides, per built-in check, the expression that turns one window of the runtime's counters and
histograms into one number for one slice of traffic (release, track, tenant, agent_deployment:
the labels every serving series carries), and which direction is worse. Every expression
aggregates to a single unlabelled series, so an instant query answers one value, NaN (0/0: the
window saw no requests) or an empty vector (no series at all); what those mean for a verdict
is the rollout's decision, not this module's. Must not talk to Prometheus or read a clock.

Router health follows the training SLOs' definitions (train/router_health.py): imbalance is the
mean over MoE layers of max/mean expert load, entropy the mean gate entropy in nats; both over
the window's increase of the per-(layer, expert) counters, never the last request's gauge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

REQUESTS = "tugboat_requests_total"
TOKENS = "tugboat_tokens_total"
LATENCY = "tugboat_request_latency_seconds"
LATENCY_PER_TOKEN = "tugboat_request_latency_per_token_seconds"
SCORE = "tugboat_success_score"
EXPERT_TOKENS = "tugboat_router_expert_tokens_total"
ENTROPY_NATS = "tugboat_router_entropy_nats_total"
# A guardrail's refusal (4xx) is the runtime doing its job, not an error.
ERROR_MATCHER = 'code=~"5.."'
DEFAULT_QUANTILE = 0.95


class Builtin(StrEnum):
    """Built-in queries; the names are those an analysis check's `metric` uses on the wire."""

    ERROR_RATE = "ErrorRate"
    LATENCY_P95 = "LatencyP95"
    LATENCY_PER_TOKEN = "LatencyPerToken"
    SUCCESS_SCORE = "SuccessScore"
    ROUTER_IMBALANCE = "RouterImbalance"
    ROUTER_ENTROPY = "RouterEntropy"
    REQUEST_COUNT = "RequestCount"
    TOKEN_COUNT = "TokenCount"


# A breach is a value above the threshold for these, below it for the others.
HIGHER_IS_WORSE = frozenset({Builtin.ERROR_RATE, Builtin.LATENCY_P95, Builtin.LATENCY_PER_TOKEN,
                             Builtin.ROUTER_IMBALANCE})


@dataclass(frozen=True)
class Slice:
    """Which serving traffic a query looks at; None leaves that label unconstrained."""

    release: str | None = None
    track: str | None = None
    tenant: str | None = None
    agent_deployment: str | None = None

    def with_track(self, track: str) -> Slice:
        """The same slice on another track: the canary's window against the stable's."""
        return replace(self, track=track)

    def matchers(self) -> list[str]:
        labels = {"release": self.release, "track": self.track, "tenant": self.tenant,
                  "agent_deployment": self.agent_deployment}
        return [f'{name}="{escape_label_value(value)}"' for name, value in labels.items()
                if value is not None]


def escape_label_value(value: str) -> str:
    """The body of a PromQL double-quoted string literal that means exactly `value`."""
    out = []
    for char in value:
        if char in ('\\', '"'):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:  # PromQL strings are UTF-8: any other character stands for itself
            out.append(char)
    return "".join(out)


def window_literal(seconds: int) -> str:
    """A range duration; whole seconds, at least one (Prometheus refuses a zero range)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ValueError(f"a query window is a whole number of seconds >= 1, got {seconds!r}")
    return f"{seconds}s"


def series(metric: str, where: Slice, *extra: str) -> str:
    matchers = [*where.matchers(), *extra]
    return f"{metric}{{{','.join(matchers)}}}" if matchers else metric


def _increase(metric: str, where: Slice, window: str, *extra: str) -> str:
    return f"increase({series(metric, where, *extra)}[{window}])"


def _quantile(histogram: str, where: Slice, window: str, quantile: float) -> str:
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"a quantile is between 0 and 1, got {quantile!r}")
    return (f"histogram_quantile({quantile}, sum by (le) "
            f"(rate({series(histogram + '_bucket', where)}[{window}])))")


def error_rate(where: Slice, window: int) -> str:
    """5xx share of the window's requests; the 5xx series may not exist yet: it counts as 0."""
    w = window_literal(window)
    errors = f"sum({_increase(REQUESTS, where, w, ERROR_MATCHER)})"
    return f"({errors} or vector(0)) / sum({_increase(REQUESTS, where, w)})"


def latency_p95(where: Slice, window: int, quantile: float = DEFAULT_QUANTILE) -> str:
    return _quantile(LATENCY, where, window_literal(window), quantile)


def latency_per_token(where: Slice, window: int, quantile: float = DEFAULT_QUANTILE) -> str:
    """The quantile of request latency / tokens generated for it (the 20 ms/token SLO)."""
    return _quantile(LATENCY_PER_TOKEN, where, window_literal(window), quantile)


def success_score(where: Slice, window: int) -> str:
    """Mean success-detector score of the window's answered requests."""
    w = window_literal(window)
    return (f"sum({_increase(SCORE + '_sum', where, w)}) / "
            f"sum({_increase(SCORE + '_count', where, w)})")


def _expert_tokens(where: Slice, window: str) -> str:
    # Summed over pods first: the imbalance of the traffic slice, not of one replica.
    return f"sum by (layer, expert) ({_increase(EXPERT_TOKENS, where, window)})"


def router_imbalance(where: Slice, window: int) -> str:
    """Mean over layers of max/mean expert load over the window (1 = balanced, E = collapsed)."""
    tokens = _expert_tokens(where, window_literal(window))
    return f"avg(max by (layer) ({tokens}) / avg by (layer) ({tokens}))"


def router_entropy(where: Slice, window: int) -> str:
    """Mean gate entropy (nats) over the window's routed tokens, averaged over layers: every
    layer routes the same tokens, so the sum over layers divides evenly."""
    w = window_literal(window)
    return f"sum({_increase(ENTROPY_NATS, where, w)}) / sum({_increase(EXPERT_TOKENS, where, w)})"


def request_count(where: Slice, window: int) -> str:
    """Requests the slice answered in the window, any code: the minimum-samples rule and exposure.
    Like every increase(), an estimate extrapolated to the window's edges: off by up to one
    scrape interval's worth of traffic (20% for a pod a few seconds old, scraped every second)."""
    return f"sum({_increase(REQUESTS, where, window_literal(window))})"


def token_count(where: Slice, window: int) -> str:
    """Tokens the slice delivered to callers in the window (exposure accounting)."""
    return f"sum({_increase(TOKENS, where, window_literal(window))})"


_BUILDERS = {
    Builtin.ERROR_RATE: error_rate, Builtin.LATENCY_P95: latency_p95,
    Builtin.LATENCY_PER_TOKEN: latency_per_token, Builtin.SUCCESS_SCORE: success_score,
    Builtin.ROUTER_IMBALANCE: router_imbalance, Builtin.ROUTER_ENTROPY: router_entropy,
    Builtin.REQUEST_COUNT: request_count, Builtin.TOKEN_COUNT: token_count,
}


def builtin_query(check: Builtin | str, where: Slice, window: int) -> str:
    """The expression of a built-in check by its wire name; ValueError for an unknown name."""
    return _BUILDERS[Builtin(check)](where, window)
