"""The training loop every worker runs: init or resume, steps, router guard, checkpoints, summary.

Decides the order of things within a run (resume -> step -> guard -> log -> checkpoint) and
what the run's summary says. Must not know whether it runs under Ray (the Session says) nor
where metrics go (the StepSink says); must not write RESULT.json (the driver does).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tugboat_workloads.data import TokenTable
from tugboat_workloads.moe.checkpoint import load_train_state, save_checkpoint
from tugboat_workloads.moe.model import MoETransformer
from tugboat_workloads.train.batches import step_batch, table_to_tensor
from tugboat_workloads.train.config import TrainConfig
from tugboat_workloads.train.progress import StepRecord, format_progress, step_metrics, summary_metrics
from tugboat_workloads.train.router_guard import GuardPolicy, GuardState, observe
from tugboat_workloads.train.router_health import final_window, judge_slo, summarize_router
from tugboat_workloads.train.session import Session, StepSink
from tugboat_workloads.train.step import NonFiniteLossError, train_step

WARMUP_STEPS = 10
HISTORY_KEPT = 500  # enough for the final SLO window of any run up to 5000 steps


@dataclass(frozen=True)
class LoopInputs:
    config: TrainConfig
    table: TokenTable
    resume_dir: str | None = None
    progress_every: int = 10


@dataclass
class LoopSummary:
    start_step: int
    step: int
    failure: str | None  # "NonFiniteLoss" or None
    message: str
    metrics: dict[str, float]
    router_healthy: bool
    interventions: list[dict[str, Any]]
    checkpoint: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class _Run:
    raw: MoETransformer
    model: nn.Module
    optimizer: torch.optim.Optimizer
    guard: GuardState
    step: int = 0
    start_step: int = 0
    history: list[StepRecord] = field(default_factory=list)
    interventions: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: str | None = None


def run_training(inputs: LoopInputs, session: Session, sink: StepSink) -> LoopSummary:
    cfg = inputs.config
    run = _start(inputs, session)
    tokens = table_to_tensor(inputs.table)
    health = cfg.router_health
    policy = GuardPolicy(health.max_imbalance, health.min_entropy, health.action)
    failure, message = None, f"trained steps {run.start_step + 1}..{cfg.training.steps}"
    try:
        while run.step < cfg.training.steps:
            _one_step(run, inputs, session, sink, tokens, policy)
            if run.step % cfg.training.checkpoint_interval == 0 or run.step == cfg.training.steps:
                _checkpoint(run, cfg, session, sink)
    except NonFiniteLossError as exc:
        # Stop without checkpointing: the weights on disk are the last finite ones.
        failure, message = "NonFiniteLoss", f"step {run.step + 1}: {exc}"
    return _summarize(run, cfg, failure, message)


def _start(inputs: LoopInputs, session: Session) -> _Run:
    cfg = inputs.config
    torch.manual_seed(cfg.training.seed)  # same initial weights on every worker
    raw = MoETransformer(cfg.model)
    model = session.prepare(raw)
    optimizer = torch.optim.AdamW(raw.parameters(), lr=cfg.training.learning_rate)
    run = _Run(raw, model, optimizer, GuardState(temperature=cfg.model.gate_temperature))
    if inputs.resume_dir:
        _resume(run, Path(inputs.resume_dir), session)
    return run


def _resume(run: _Run, directory: Path, session: Session) -> None:
    state = load_train_state(directory)
    weights = torch.load(directory / "model.pt", map_location=session.device, weights_only=True)
    run.raw.load_state_dict(weights)
    run.optimizer.load_state_dict(state["optimizer"])
    run.step = run.start_step = int(state["step"])
    run.guard = GuardState.from_dict(state["guard"])
    run.raw.set_gate_noise(run.guard.noise_std)
    run.history = [StepRecord.from_dict(row) for row in state.get("history", [])]
    run.interventions = list(state.get("interventions", []))
    run.checkpoint = str(directory)
    torch.set_rng_state(state["rng"])
    if session.rank == 0:
        print(f"[train] resumed from step {run.step} ({directory}), gate temperature "
              f"{run.guard.temperature:.3f}, noise {run.guard.noise_std:.2f}", flush=True)


def _one_step(run: _Run, inputs: LoopInputs, session: Session, sink: StepSink,
              tokens: torch.Tensor, policy: GuardPolicy) -> None:
    cfg = inputs.config
    step = run.step + 1
    started = time.perf_counter()
    batch, targets = step_batch(tokens, cfg.training.seed, step, cfg.training.batch_size,
                                session.rank, session.world_size)
    for group in run.optimizer.param_groups:
        group["lr"] = cfg.training.learning_rate * min(1.0, step / WARMUP_STEPS)
    stats = train_step(run.model, run.optimizer, batch.to(session.device), targets.to(session.device),
                       bf16=cfg.training.precision == "bf16", all_reduce_mean=session.all_reduce_mean)
    elapsed = time.perf_counter() - started
    sample = summarize_router(stats.expert_load, stats.router_entropy, stats.dropped_fraction)
    record = StepRecord(step, stats.loss, cfg.training.batch_size * cfg.model.seq_len / elapsed, sample)
    run.step = step
    run.history = (run.history + [record])[-HISTORY_KEPT:]
    run.guard, intervention = observe(policy, run.guard, step, sample)
    if intervention is not None:
        run.raw.set_gate_temperature(intervention.temperature)
        run.raw.set_gate_noise(intervention.noise_std)
        run.interventions.append(intervention.to_dict())
        sink.log_intervention(intervention)
    if session.rank == 0:
        learning_rate = float(run.optimizer.param_groups[0]["lr"])
        sink.log_step(step, step_metrics(record, stats, run.guard, learning_rate))
        if step % inputs.progress_every == 0 or step == cfg.training.steps or intervention:
            print(format_progress(record, cfg.training.steps, run.guard, intervention), flush=True)


def _checkpoint(run: _Run, cfg: TrainConfig, session: Session, sink: StepSink) -> None:
    metrics = _result_metrics(run, cfg)

    def write(directory: Path) -> None:
        train_state = {
            "optimizer": run.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "guard": run.guard.to_dict(),
            "history": [record.to_dict() for record in run.history],
            "interventions": run.interventions,
        }
        save_checkpoint(directory, run.raw, step=run.step, metrics=metrics, train_state=train_state)

    persisted = session.checkpoint(run.step, write, metrics)
    if session.rank == 0 and persisted:
        run.checkpoint = persisted
        sink.log_checkpoint(run.step, persisted)


def _result_metrics(run: _Run, cfg: TrainConfig) -> dict[str, float]:
    this_attempt = [r for r in run.history if r.step > run.start_step]
    window = final_window(run.history, cfg.training.steps)
    health = cfg.router_health
    verdict = judge_slo([r.sample for r in window], health.max_imbalance, health.min_entropy)
    return {**summary_metrics(window, this_attempt, verdict), "routerHealthy": float(verdict.healthy)}


def _summarize(run: _Run, cfg: TrainConfig, failure: str | None, message: str) -> LoopSummary:
    healthy = False
    metrics: dict[str, float] = {}
    if run.history:
        metrics = _result_metrics(run, cfg)
        healthy = bool(metrics.pop("routerHealthy"))
        if failure is None:
            window = final_window(run.history, cfg.training.steps)
            message = judge_slo([r.sample for r in window], cfg.router_health.max_imbalance,
                                cfg.router_health.min_entropy).message
    return LoopSummary(run.start_step, run.step, failure, message, metrics, healthy,
                       run.interventions, run.checkpoint)
