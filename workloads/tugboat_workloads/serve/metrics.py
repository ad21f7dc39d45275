"""Prometheus metrics of the serving runtime, in a registry of their own.

Decides metric names, buckets and labels: every series carries release, track, tenant and
agent_deployment (fixed per process) so the operator's canary analysis can compare tracks.
Everything canary analysis reads over a window is a counter or a histogram, so PromQL's
increase() over any window sees every request of it: requests by HTTP code (5xx = errors),
delivered and generated tokens, latency and latency per generated token, the success score,
and per (layer, expert) the tokens the MoE router sent there with the gate entropy they had
(window imbalance = max/mean over experts of the increase; window entropy = entropy increase /
token increase). The router gauges only show the last request, for a quick look.
Must not decide anything about requests; the request flow reports what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BASE_LABELS = ("release", "track", "tenant", "agent_deployment")
# Sub-millisecond to seconds: a tiny model answers in milliseconds, a loaded pod in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25,
                   0.5, 1.0, 2.5, 5.0, 10.0)
# Around the 20 ms/token SLO of the seed, with 0.02 itself a bucket boundary.
LATENCY_PER_TOKEN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025,
                             0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# The codes an error-rate query divides: present from the start, so increase() counts the first.
KNOWN_CODES = ("200", "500")
# Pre-created so that rate() over a fresh pod sees 0 rather than a missing series.
KNOWN_DECISIONS = {
    "tenant": ("allow", "deny"), "permission": ("allow", "deny"), "tools": ("allow", "deny"),
    "prompt_filter": ("allow", "deny"), "token_budget": ("allow", "deny"),
    "fallback": ("allow", "fallback", "refuse"),
}
CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class Identity:
    release: str
    track: str
    tenant: str
    agent_deployment: str

    def labels(self) -> dict[str, str]:
        return {"release": self.release, "track": self.track, "tenant": self.tenant,
                "agent_deployment": self.agent_deployment}


class ServeMetrics:
    """The runtime's metric families, bound to one process identity."""

    def __init__(self, identity: Identity):
        self.registry = CollectorRegistry()
        base = identity.labels()
        reg = self.registry
        self._requests = Counter("tugboat_requests_total", "Generate requests by HTTP status code",
                                 [*BASE_LABELS, "code"], registry=reg)
        self._latency = Histogram("tugboat_request_latency_seconds", "Generate request latency",
                                  BASE_LABELS, buckets=LATENCY_BUCKETS, registry=reg).labels(**base)
        self._tokens = Counter("tugboat_tokens_total", "Tokens delivered to callers",
                               BASE_LABELS, registry=reg).labels(**base)
        self._generated = Counter("tugboat_generated_tokens_total",
                                  "Tokens the models generated (primary and fallback)",
                                  BASE_LABELS, registry=reg).labels(**base)
        self._latency_per_token = Histogram(
            "tugboat_request_latency_per_token_seconds",
            "Request latency divided by the tokens generated for it (requests that generated any)",
            BASE_LABELS, buckets=LATENCY_PER_TOKEN_BUCKETS, registry=reg).labels(**base)
        self._score = Histogram("tugboat_success_score", "Success detector score per answered request",
                                BASE_LABELS, buckets=SCORE_BUCKETS, registry=reg).labels(**base)
        self._imbalance = Gauge("tugboat_router_expert_load_imbalance",
                                "Max/mean expert load of the worst MoE layer, last request",
                                BASE_LABELS, registry=reg).labels(**base)
        self._entropy = Gauge("tugboat_router_entropy",
                              "Mean router gate entropy over MoE layers (nats), last request",
                              BASE_LABELS, registry=reg).labels(**base)
        self._expert_tokens = Counter(
            "tugboat_router_expert_tokens_total",
            "Tokens the router sent to each expert, over every forward pass (expert_load x "
            "positions: a token's top-k slots share it; summed over experts: tokens routed)",
            [*BASE_LABELS, "layer", "expert"], registry=reg)
        self._entropy_nats = Counter(
            "tugboat_router_entropy_nats_total",
            "Router gate entropy (nats) summed over the tokens routed in each MoE layer",
            [*BASE_LABELS, "layer"], registry=reg)
        self._decisions = Counter("tugboat_guardrail_decisions_total", "Guardrail decisions",
                                  [*BASE_LABELS, "guardrail", "decision"], registry=reg)
        self._graph = Gauge("tugboat_serve_graph_info",
                            "1 for the graph this process serves: requested, served, why, and the CPU "
                            "features the numerics probe ran on", [*BASE_LABELS, "requested", "served",
                                                                   "reason", "cpu"], registry=reg)
        self._probe = Gauge("tugboat_serve_probe_top1_agreement",
                            "Top-1 agreement with torch of the served graph on the artifact's numerics "
                            "probe, measured at startup on this CPU", [*BASE_LABELS, "graph"], registry=reg)
        self._audit_key_ephemeral = Gauge(
            "tugboat_audit_key_ephemeral",
            "1 when audit prompt digests use a random per-process key (no tenant key file): they "
            "then match only within this process", BASE_LABELS, registry=reg).labels(**base)
        self._store_errors = Counter(
            "tugboat_serve_budget_store_errors_total",
            "Calls to the shared token budget store that failed (unreachable, timeout, error)",
            BASE_LABELS, registry=reg).labels(**base)
        self._store_up = Gauge("tugboat_serve_budget_store_up",
                               "1 when the last call to the shared token budget store succeeded",
                               BASE_LABELS, registry=reg).labels(**base)
        self._base = base
        for guardrail, decisions in KNOWN_DECISIONS.items():
            for decision in decisions:
                self._decisions.labels(**base, guardrail=guardrail, decision=decision)
        for code in KNOWN_CODES:
            self._requests.labels(**base, code=code)

    def request_done(self, code: int, latency_seconds: float, generated_tokens: int = 0) -> None:
        self._requests.labels(**self._base, code=str(code)).inc()
        self._latency.observe(latency_seconds)
        if generated_tokens > 0:
            self._generated.inc(generated_tokens)
            self._latency_per_token.observe(latency_seconds / generated_tokens)

    def tokens(self, count: int) -> None:
        self._tokens.inc(count)

    def score(self, value: float) -> None:
        self._score.observe(value)

    def router_health(self, imbalance: float, entropy: float) -> None:
        self._imbalance.set(imbalance)
        self._entropy.set(entropy)

    def graph(self, choice) -> None:
        """Record the startup GraphChoice (graph_choice.GraphChoice)."""
        self._graph.labels(**self._base, requested=choice.requested, served=choice.served,
                           reason=choice.reason, cpu=choice.cpu).set(1)
        if choice.agreement is not None:
            self._probe.labels(**self._base, graph=choice.served).set(choice.agreement)

    def audit_key(self, ephemeral: bool) -> None:
        self._audit_key_ephemeral.set(1 if ephemeral else 0)

    def expect_router(self, layers: int, experts: int) -> None:
        """Create every (layer, expert) series at 0 once the model's shape is known, so that
        the first request's routing counts in increase() and an unused expert reads 0."""
        for layer in range(layers):
            self._entropy_nats.labels(**self._base, layer=str(layer))
            for expert in range(experts):
                self._expert_tokens.labels(**self._base, layer=str(layer), expert=str(expert))

    def routed(self, expert_tokens: np.ndarray, entropy_nats: np.ndarray) -> None:
        """Add one generation's router counts: [layers, experts] tokens, [layers] entropy sums."""
        for layer, row in enumerate(np.asarray(expert_tokens, dtype=np.float64)):
            self._entropy_nats.labels(**self._base, layer=str(layer)).inc(float(entropy_nats[layer]))
            for expert, tokens in enumerate(row):
                self._expert_tokens.labels(**self._base, layer=str(layer),
                                           expert=str(expert)).inc(float(tokens))

    def budget_store(self, up: bool) -> None:
        """Record the outcome of one call to the shared token budget store."""
        if not up:
            self._store_errors.inc()
        self._store_up.set(1 if up else 0)

    def decision(self, guardrail: str, decision: str) -> None:
        self._decisions.labels(**self._base, guardrail=guardrail, decision=decision).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
