"""A hand-built report data set (shared by the unit and browser tests of `tugboat report`)."""

from __future__ import annotations

import math

from tugboat.report.model import AnalysisSeries, Decision, Missing, ReleaseData, Series, TrainingData

T0 = 1_790_000_000.0


def history(steps: int = 60, experts: int = 4) -> dict[str, dict[int, float]]:
    h = {"loss": {s: 3.0 * math.exp(-s / 20) + 0.4 for s in range(steps)},
         "tokens_per_second": {s: 5000 + 50 * math.sin(s) for s in range(steps)},
         "expert_load_imbalance": {s: 2.0 - s / steps for s in range(steps)},
         "router_entropy": {s: 0.9 + s / steps * 0.5 for s in range(steps)}}
    for e in range(experts):
        h[f"expert_load_{e}"] = {s: (1 + (e - 1.5) * (1 - s / steps) * 0.4) / experts for s in range(steps)}
    return h


def training(hist: dict | Missing | None = None) -> TrainingData:
    status = {"phase": "Succeeded", "step": 59, "mlflowRunId": "abc123", "metrics": {"loss": 0.5},
              "conditions": [{"type": "Trained", "status": "True", "reason": "Succeeded", "message": "done"}]}
    return TrainingData("moe-a", "ml-platform", status, 1.6, 1.1, history() if hist is None else hist)


def release_status() -> dict:
    check = {"name": "error-rate", "failures": 2,
             "last": {"check": "error-rate", "metric": "ErrorRate", "query": "q", "value": 0.5,
                      "threshold": 0.05,
                      "direction": "max", "verdict": "Fail", "time": "2026-09-21T00:00:00Z"}}
    return {"phase": "RolledBack", "manifestDigest": "sha256:feedbeef", "artifactUri": "file:///a/v2",
            "registryVersion": "3",
            "graphs": [{"name": "fp32", "file": "model.onnx", "published": True, "top1Agreement": 1.0,
                        "probeTop1Agreement": 0.99, "maxAbsError": 1e-5},
                       {"name": "int8", "file": "model.int8.onnx", "published": False, "top1Agreement": 0.7,
                        "probeTop1Agreement": 0.6, "maxAbsError": 0.3, "reason": "TooFarFromTorch"}],
            "conditions": [{"type": "Signed", "status": "True", "reason": "Signed", "message": "ok"},
                           {"type": "Verified", "status": "True", "reason": "Verified", "message": "ok"}],
            "rollout": {"phase": "RolledBack",
                        "breach": {"reason": "AnalysisFailed", "message": "error rate 0.5",
                                   "check": "error-rate", "value": 0.5, "threshold": 0.05,
                                   "time": "2026-09-21T00:00:00Z"},
                        "targets": [{"namespace": "team-b", "name": "arith-agent", "tenant": "team-b",
                                     "wave": 0, "checks": [check]}]}}


def release(prometheus: bool = True, with_training: bool = True) -> ReleaseData:
    xs = tuple(T0 + 10 * i for i in range(40))
    if prometheus:
        weights = [Series("team-b", xs, tuple(0 if i < 5 else 10 if i < 20 else 50 if i < 30 else 0
                                              for i in range(40))),
                   Series("team-a", xs, tuple(0.0 for _ in xs))]
        analysis = [AnalysisSeries("team-b/arith-agent", "error-rate", 0.05, "max",
                                   Series("", xs, tuple(0.01 if i < 25 else 0.5 for i in range(40)))),
                    AnalysisSeries("team-a/arith-agent", "latency-p95", 0.25, "max",
                                   Missing("not measured yet"))]
    else:
        weights = analysis = Missing("no Prometheus URL given")
    return ReleaseData("moe-arith-v2", "ml-platform", release_status(), weights, analysis,
                       Decision("RolledBack", T0 + 300, "error rate 0.5"),
                       training() if with_training else None)
