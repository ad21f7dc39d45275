"""The counters canary analysis reads over a window: router counts per (layer, expert) summed
over every forward pass, generated tokens, latency per generated token, pre-created codes."""

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tugboat_workloads.serve.metrics import Identity, ServeMetrics

BASE = {"release": "r1", "track": "canary", "tenant": "acme", "agent_deployment": "agent"}


def samples(metrics):
    text = metrics.exposition().decode()
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in BASE))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_router_series_exist_at_zero_once_the_shape_is_known_and_add_up_per_request():
    metrics = ServeMetrics(Identity(**BASE))
    assert not [k for k in samples(metrics) if k[0] == "tugboat_router_expert_tokens_total"]
    metrics.expect_router(2, 3)
    zero = samples(metrics)
    cells = {labels for name, labels in zero if name == "tugboat_router_expert_tokens_total"}
    assert cells == {(("expert", str(e)), ("layer", str(layer))) for layer in range(2) for e in range(3)}
    assert all(v == 0 for (name, _), v in zero.items() if name.startswith("tugboat_router_") and
               name.endswith("_total"))
    metrics.routed(np.array([[3.0, 1.0, 0.0], [2.0, 2.0, 0.0]]), np.array([4.5, 6.0]))
    metrics.routed(np.array([[1.0, 1.0, 2.0], [0.0, 0.0, 4.0]]), np.array([1.5, 2.0]))
    after = samples(metrics)
    tokens = lambda layer, e: after[("tugboat_router_expert_tokens_total",  # noqa: E731
                                     (("expert", str(e)), ("layer", str(layer))))]
    assert [tokens(0, e) for e in range(3)] == [4.0, 2.0, 2.0]
    assert [tokens(1, e) for e in range(3)] == [2.0, 2.0, 4.0]
    assert after[("tugboat_router_entropy_nats_total", (("layer", "0"),))] == 6.0
    assert after[("tugboat_router_entropy_nats_total", (("layer", "1"),))] == 8.0


def test_latency_per_generated_token_and_generated_tokens_count_only_requests_that_generated():
    metrics = ServeMetrics(Identity(**BASE))
    before = samples(metrics)
    assert before[("tugboat_requests_total", (("code", "200"),))] == 0
    assert before[("tugboat_requests_total", (("code", "500"),))] == 0
    metrics.request_done(200, 0.08, generated_tokens=4)   # 20 ms per token: the SLO's edge
    metrics.request_done(400, 0.001)                      # refused before any model ran
    after = samples(metrics)
    assert after[("tugboat_generated_tokens_total", ())] == 4
    assert after[("tugboat_request_latency_per_token_seconds_count", ())] == 1
    assert after[("tugboat_request_latency_per_token_seconds_sum", ())] == pytest.approx(0.02)
    assert after[("tugboat_request_latency_per_token_seconds_bucket", (("le", "0.02"),))] == 1
    assert after[("tugboat_request_latency_per_token_seconds_bucket", (("le", "0.015"),))] == 0
    assert after[("tugboat_request_latency_seconds_count", ())] == 2
