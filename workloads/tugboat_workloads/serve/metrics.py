"""Prometheus metrics of the serving runtime, in a registry of their own.

Decides metric names, buckets and labels: every series carries release, track, tenant and
agent_deployment (fixed per process) so the operator's canary analysis can compare tracks.
Must not decide anything about requests; the request flow reports what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BASE_LABELS = ("release", "track", "tenant", "agent_deployment")
# Sub-millisecond to seconds: a tiny model answers in milliseconds, a loaded pod in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25,
                   0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
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
        self._score = Histogram("tugboat_success_score", "Success detector score per answered request",
                                BASE_LABELS, buckets=SCORE_BUCKETS, registry=reg).labels(**base)
        self._imbalance = Gauge("tugboat_router_expert_load_imbalance",
                                "Max/mean expert load of the worst MoE layer, last request",
                                BASE_LABELS, registry=reg).labels(**base)
        self._entropy = Gauge("tugboat_router_entropy",
                              "Mean router gate entropy over MoE layers (nats), last request",
                              BASE_LABELS, registry=reg).labels(**base)
        self._decisions = Counter("tugboat_guardrail_decisions_total", "Guardrail decisions",
                                  [*BASE_LABELS, "guardrail", "decision"], registry=reg)
        self._graph = Gauge("tugboat_serve_graph_info",
                            "1 for the graph this process serves: requested, served, why, and the CPU "
                            "features the numerics probe ran on", [*BASE_LABELS, "requested", "served",
                                                                   "reason", "cpu"], registry=reg)
        self._probe = Gauge("tugboat_serve_probe_top1_agreement",
                            "Top-1 agreement with torch of the served graph on the artifact's numerics "
                            "probe, measured at startup on this CPU", [*BASE_LABELS, "graph"], registry=reg)
        self._base = base
        for guardrail, decisions in KNOWN_DECISIONS.items():
            for decision in decisions:
                self._decisions.labels(**base, guardrail=guardrail, decision=decision)

    def request_done(self, code: int, latency_seconds: float) -> None:
        self._requests.labels(**self._base, code=str(code)).inc()
        self._latency.observe(latency_seconds)

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

    def decision(self, guardrail: str, decision: str) -> None:
        self._decisions.labels(**self._base, guardrail=guardrail, decision=decision).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
