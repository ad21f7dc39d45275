"""RESULT.json: reasons derived from the loop summary or a failure, and the wire shape."""

import json

from tugboat_workloads.train.result import Reason, derive_result, failed_before_training

METRICS = {"loss": 0.5, "tokensPerSecond": 1000.0, "expertLoadImbalance": 1.2, "routerEntropy": 1.4,
           "droppedFraction": 0.01}


def _summary(**overrides):
    summary = {"start_step": 0, "step": 40, "failure": None, "message": "router healthy", "metrics": METRICS,
               "router_healthy": True, "interventions": [], "checkpoint": "/s/run/checkpoint_step_0000040"}
    summary.update(overrides)
    return summary


def test_success_has_the_contract_shape(tmp_path):
    result = derive_result(_summary(), None, run_id="r1", resumed_from_step=20)
    assert result.succeeded and result.reason == Reason.COMPLETED
    result.write(tmp_path / "out" / "RESULT.json")
    wire = json.loads((tmp_path / "out" / "RESULT.json").read_text())
    assert wire == {"state": "Succeeded", "reason": "Completed", "message": "router healthy",
                    "mlflowRunId": "r1",
                    "checkpoint": "/s/run/checkpoint_step_0000040", "step": 40, "resumedFromStep": 20,
                    "metrics": METRICS, "routerHealthy": True}


def test_failures_map_to_their_reasons():
    nan = derive_result(_summary(failure="NonFiniteLoss", message="step 7: non-finite loss"), None,
                        run_id="r", resumed_from_step=0)
    assert (nan.state, nan.reason) == ("Failed", Reason.NON_FINITE_LOSS)
    assert nan.message == "step 7: non-finite loss"
    sick = derive_result(_summary(router_healthy=False, message="router entropy 0.9 <= 1.1"), None,
                         run_id="r", resumed_from_step=0)
    assert (sick.state, sick.reason) == ("Failed", Reason.ROUTER_UNHEALTHY)
    dead = derive_result(None, "WorkerGroupError: rank 1 died", run_id="r", resumed_from_step=10,
                         fallback_checkpoint="/s/a/checkpoint_step_0000030", fallback_step=30)
    assert (dead.reason, dead.step, dead.checkpoint, dead.message) == (
        Reason.WORKER_FAILURE, 30, "/s/a/checkpoint_step_0000030", "WorkerGroupError: rank 1 died")


def test_non_finite_metrics_are_dropped_to_keep_strict_json():
    result = derive_result(_summary(metrics={**METRICS, "loss": float("nan")}), None, run_id="r",
                           resumed_from_step=0)
    assert "loss" not in result.to_json()["metrics"]
    json.dumps(result.to_json(), allow_nan=False)


def test_failed_before_training():
    result = failed_before_training(Reason.DATA_CHECKSUM_MISMATCH, "expected a, got b")
    assert result.to_json()["state"] == "Failed" and result.to_json()["reason"] == "DataChecksumMismatch"
    assert result.to_json()["mlflowRunId"] == "" and result.to_json()["metrics"] == {}
