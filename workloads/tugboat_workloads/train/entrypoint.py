"""`python -m tugboat_workloads.train --config CONFIG.json [--result RESULT.json]`

The driver of one training attempt, as a list of named steps: read the config, verify the
dataset, find the resume point, open the MLflow run, fit on Ray, record the outcome, write
RESULT.json. Exit 0 on Succeeded, 1 on Failed, 2 when even the config is unusable. Decides the
order of those steps only; each step's logic lives in its own module.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Sequence

from tugboat_workloads.data import DataChecksumError, DataError, TokenTable, load_verified_tokens
from tugboat_workloads.train.config import InvalidConfigError, TrainConfig, load_train_config
from tugboat_workloads.train.loop import LoopInputs
from tugboat_workloads.train.result import Reason, TrainResult, derive_result, failed_before_training
from tugboat_workloads.train.resume import ResumePoint, find_resume_point

log = logging.getLogger("tugboat_workloads.train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tugboat_workloads.train")
    parser.add_argument("--config", required=True, help="CONFIG.json written by the operator")
    parser.add_argument("--result", help="where to write RESULT.json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run_attempt(args.config)
    except Exception as exc:  # an infrastructure failure (MLflow, Ray start): retryable
        log.exception("training attempt failed unexpectedly")
        result = failed_before_training(Reason.WORKER_FAILURE, f"{type(exc).__name__}: {exc}")
    if args.result:
        result.write(args.result)
    print(f"[train] {result.state} ({result.reason}) step {result.step}: {result.message}", flush=True)
    if result.succeeded:
        return 0
    return 2 if result.reason == Reason.INVALID_CONFIG else 1


def run_attempt(config_path: str) -> TrainResult:
    try:
        cfg = load_train_config(config_path)
    except InvalidConfigError as exc:
        return failed_before_training(Reason.INVALID_CONFIG, str(exc))
    try:
        table = load_verified_tokens(cfg.data.uri, cfg.model.vocab_size, cfg.model.seq_len, cfg.data.sha256,
                                     allowed_roots=cfg.data.roots)
        resume = find_resume_point(cfg.storage_path, cfg.model)
    except DataChecksumError as exc:
        return failed_before_training(Reason.DATA_CHECKSUM_MISMATCH, str(exc))
    except DataError as exc:
        return failed_before_training(Reason.INVALID_CONFIG, f"data.uri: {exc}")
    except InvalidConfigError as exc:  # the checkpoint under storagePath is of another model
        return failed_before_training(Reason.INVALID_CONFIG, str(exc))
    where = f"resuming from step {resume.step} ({resume.directory})" if resume else "starting from step 0"
    print(f"[train] {cfg.run_label} attempt {cfg.attempt}: {where}", flush=True)
    return _train_and_record(cfg, table, resume)


def _train_and_record(cfg: TrainConfig, table: TokenTable, resume: ResumePoint | None) -> TrainResult:
    tracker = None
    if cfg.mlflow:
        from tugboat_workloads.train.tracking import RunTracker

        tracker = RunTracker(cfg.mlflow.tracking_uri, cfg.mlflow.experiment)
        tracker.start(f"{cfg.name}-attempt-{cfg.attempt}", _run_tags(cfg, resume), _run_params(cfg))
    run_id = tracker.run_id if tracker else ""
    if resume and resume.step >= cfg.training.steps:
        result, interventions = _already_trained(resume, run_id), []
    else:
        result, interventions = _fit(cfg, table, resume, run_id)
    if tracker:
        _plot(tracker, cfg)
        _record(tracker, result, interventions)
    return result


def _plot(tracker, cfg: TrainConfig) -> None:
    """The router-health figure in MLflow; a figure is never worth failing a trained model for."""
    try:
        tracker.log_router_plot(cfg.model.experts, cfg.router_health.max_imbalance,
                                cfg.router_health.min_entropy, f"{cfg.run_label} attempt {cfg.attempt}")
    except Exception as exc:  # noqa: BLE001 - matplotlib or MLflow trouble: log it, keep the result
        log.warning("router-health plot not written: %s: %s", type(exc).__name__, exc)


def _fit(cfg: TrainConfig, table: TokenTable, resume: ResumePoint | None,
         run_id: str) -> tuple[TrainResult, list[dict]]:
    from tugboat_workloads.train import ray_launch

    run_name = f"attempt-{cfg.attempt}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    started_local = ray_launch.connect(cfg.resources)
    try:
        inputs = LoopInputs(cfg, table, resume.directory if resume else None)
        outcome = ray_launch.fit(inputs, run_name, run_id)
    finally:
        if started_local:
            import ray

            ray.shutdown()
    newest = find_resume_point(cfg.storage_path, cfg.model) if outcome.summary is None else None
    result = derive_result(outcome.summary, outcome.error, run_id=run_id,
                           resumed_from_step=resume.step if resume else 0,
                           fallback_checkpoint=newest.directory if newest else "",
                           fallback_step=newest.step if newest else 0)
    return result, list((outcome.summary or {}).get("interventions", []))


def _already_trained(resume: ResumePoint, run_id: str) -> TrainResult:
    """A retry after the final checkpoint was written (e.g. the crash hit while reporting)."""
    summary = {
        "step": resume.step, "checkpoint": resume.directory, "failure": None,
        "metrics": resume.metrics, "router_healthy": bool(resume.metrics.get("routerHealthy")),
        "message": f"already trained to step {resume.step}; nothing left to do",
    }
    return derive_result(summary, None, run_id=run_id, resumed_from_step=resume.step)


def _record(tracker, result: TrainResult, interventions: list[dict]) -> None:
    from tugboat_workloads.train import tracking

    if result.checkpoint:
        tracker.log_checkpoint(result.checkpoint)
    tracker.log_interventions(interventions)
    tracker.set_tags({tracking.TAG_CHECKPOINT: result.checkpoint, tracking.TAG_RESULT: str(result.reason),
                      tracking.TAG_ROUTER_HEALTHY: str(result.router_healthy).lower()})
    tracker.finish(result.succeeded)


def _run_tags(cfg: TrainConfig, resume: ResumePoint | None) -> dict[str, str]:
    from tugboat_workloads.train import tracking

    return {
        tracking.TAG_TRAINING_RUN: cfg.run_label,
        tracking.TAG_UID: cfg.uid,
        tracking.TAG_ATTEMPT: str(cfg.attempt),
        tracking.TAG_RESUMED_FROM: str(resume.step if resume else 0),
        tracking.TAG_CHECKPOINT: resume.directory if resume else "",
    }


def _run_params(cfg: TrainConfig) -> dict[str, object]:
    t, r = cfg.training, cfg.resources
    params = {f"model.{k}": v for k, v in cfg.model.to_dict().items()}
    params.update({
        "data.uri": cfg.data.uri, "data.sha256": cfg.data.sha256 or "", "training.steps": t.steps,
        "training.batchSize": t.batch_size, "training.learningRate": t.learning_rate,
        "training.precision": t.precision, "training.checkpointInterval": t.checkpoint_interval,
        "training.seed": t.seed, "resources.workers": r.workers, "resources.useGpu": r.use_gpu,
        "routerHealth.maxImbalance": cfg.router_health.max_imbalance,
        "routerHealth.minEntropy": cfg.router_health.min_entropy,
        "routerHealth.action": cfg.router_health.action,
    })
    return params


if __name__ == "__main__":
    sys.exit(main())
