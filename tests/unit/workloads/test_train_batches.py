"""Deterministic per-step batches: a resumed run sees the same data, workers split one batch."""

import pytest
import torch

from tugboat_workloads.data import load_tokens
from tugboat_workloads.train.batches import step_batch, table_to_tensor


@pytest.fixture(scope="module")
def tokens():
    return table_to_tensor(load_tokens("builtin://arithmetic?samples=128&seed=3", 16, 8))


def test_table_tensor_matches_the_rows(tokens):
    rows = load_tokens("builtin://arithmetic?samples=128&seed=3", 16, 8).to_lists()
    assert tokens.shape == (128, 9) and tokens.dtype == torch.int64
    assert tokens.tolist() == rows


def test_batches_depend_only_on_seed_and_step(tokens):
    a = step_batch(tokens, seed=0, step=5, global_batch=8, rank=0, world_size=1)
    b = step_batch(tokens, seed=0, step=5, global_batch=8, rank=0, world_size=1)
    c = step_batch(tokens, seed=0, step=6, global_batch=8, rank=0, world_size=1)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    inputs, targets = a
    assert inputs.shape == targets.shape == (8, 8)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are the inputs shifted by one


def test_workers_split_the_global_batch(tokens):
    whole, _ = step_batch(tokens, 1, 9, 8, rank=0, world_size=1)
    parts = [step_batch(tokens, 1, 9, 8, rank=r, world_size=2)[0] for r in range(2)]
    assert torch.equal(torch.cat(parts), whole)
    with pytest.raises(ValueError, match="not divisible"):
        step_batch(tokens, 1, 9, 7, rank=0, world_size=2)
