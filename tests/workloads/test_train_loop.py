"""The training loop in one process (real torch, no Ray): it learns the arithmetic task, resumes
bit-for-bit, stops on a non-finite loss with good checkpoints kept, and applies the router
guard's interventions to the model it checkpoints."""

import math

import pytest
import torch

from tugboat_workloads.data import load_tokens
from tugboat_workloads.moe import load_checkpoint
from tugboat_workloads.moe.checkpoint import load_train_state
from tugboat_workloads.task import expected_continuation
from tugboat_workloads.train.batches import table_to_tensor
from tugboat_workloads.train.config import parse_train_config
from tugboat_workloads.train.loop import LoopInputs, run_training
from tugboat_workloads.train.session import LocalSession, NullSink

# Vocabulary 16 is learnable in ~150 steps on 2 cores; 64 needs far more steps (see report).
SMALL = {"dModel": 64, "heads": 2, "experts": 4, "dFF": 128, "vocabSize": 16, "seqLen": 16}
TINY = {"dModel": 32, "heads": 2, "experts": 4, "dFF": 64, "vocabSize": 16, "seqLen": 8}


@pytest.fixture(autouse=True)
def _one_thread():
    # The suite runs beside other CPU-heavy jobs; one thread avoids OpenMP oversubscription.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _config(tmp_path, model, steps, **sections):
    raw = {"name": "t", "namespace": "ns", "storagePath": str(tmp_path),
           "data": {"uri": "builtin://arithmetic?samples=1024&seed=0"}, "model": model,
           "training": {"steps": steps, "batchSize": 32, "learningRate": 0.01, "checkpointInterval": 50},
           "resources": {"workers": 1}, "routerHealth": {"minEntropy": 0.3}}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return parse_train_config(raw)


def _train(cfg, resume_dir=None):
    table = load_tokens(cfg.data.uri, cfg.model.vocab_size, cfg.model.seq_len)
    return run_training(LoopInputs(cfg, table, resume_dir, progress_every=50), LocalSession(cfg.storage_path),
                        NullSink())


@pytest.mark.timeout(300)
def test_model_learns_the_progression_task(tmp_path):
    summary = _train(_config(tmp_path, SMALL, steps=160))
    assert summary.failure is None and summary.step == 160
    model, cfg, step = load_checkpoint(summary.checkpoint)
    assert step == 160
    held_out = table_to_tensor(load_tokens("builtin://arithmetic?samples=256&seed=99", 16, 16))
    with torch.no_grad():
        predicted = model(held_out[:, :-1]).logits.argmax(-1)
    # From the second position on, the next token is determined by the progression.
    accuracy = float((predicted[:, 1:] == held_out[:, 2:]).float().mean())
    assert accuracy >= 0.8, f"next-token accuracy {accuracy:.3f}"
    assert summary.metrics["loss"] < 0.8  # ln(16) = 2.77 at chance
    assert _greedy_continuations_correct(model, held_out[:64, :4].tolist(), 16) >= 0.8


def _greedy_continuations_correct(model, prompts, vocab):
    correct = 0
    for prompt in prompts:
        tokens = list(prompt)
        with torch.no_grad():
            for _ in range(3):
                tokens.append(int(model(torch.tensor([tokens])).logits[0, -1].argmax()))
        correct += tokens[len(prompt):] == expected_continuation(prompt, 3, vocab)
    return correct / len(prompts)


@pytest.mark.timeout(300)
def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    straight = _train(_config(tmp_path / "straight", TINY, steps=12, training={"checkpointInterval": 6}))
    first = _train(_config(tmp_path / "split", TINY, steps=6, training={"checkpointInterval": 6}))
    resumed = _train(_config(tmp_path / "split", TINY, steps=12, training={"checkpointInterval": 6}),
                     resume_dir=first.checkpoint)
    assert (resumed.start_step, resumed.step) == (6, 12)
    a = torch.load(f"{straight.checkpoint}/model.pt", weights_only=True)
    b = torch.load(f"{resumed.checkpoint}/model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from an uninterrupted run"
    assert load_train_state(resumed.checkpoint)["step"] == 12


@pytest.mark.timeout(300)
def test_non_finite_loss_stops_and_keeps_finite_checkpoints(tmp_path):
    cfg = _config(tmp_path, TINY, steps=30, training={"learningRate": 1e9, "checkpointInterval": 1})
    summary = _train(cfg)
    assert summary.failure == "NonFiniteLoss" and "non-finite" in summary.message
    assert 1 <= summary.step < 30  # the first step (at initial weights) is finite
    model, _, step = load_checkpoint(summary.checkpoint)
    assert step == summary.step
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.timeout(300)
def test_router_guard_interventions_reach_the_checkpointed_model(tmp_path):
    # An entropy floor above ln(4) can never be met: the guard must keep bumping temperature.
    cfg = _config(tmp_path, TINY, steps=30, routerHealth={"minEntropy": 5.0, "action": "Both"},
                  training={"precision": "bf16"})
    summary = _train(cfg)
    assert summary.failure is None and not summary.router_healthy
    assert len(summary.interventions) >= 2
    assert {i["action"] for i in summary.interventions} == {"Both"}
    model, _, _ = load_checkpoint(summary.checkpoint)
    last = summary.interventions[-1]
    assert float(model.gate_temperature) == pytest.approx(last["temperature"]) and last["temperature"] > 1.0
    assert last["noise_std"] > 0
    assert load_train_state(summary.checkpoint)["guard"]["noise_std"] == pytest.approx(last["noise_std"])
    assert math.isfinite(summary.metrics["loss"])
