"""Which samples each worker trains on at each step.

Decides batches as a pure function of (seed, step, rank): a resumed run sees exactly the
batches the crashed one would have seen, and the workers split one global batch without any
sampler state to checkpoint. Must not read data from disk (the driver verified and shipped it).
"""

from __future__ import annotations

import torch

from tugboat_workloads.data import TokenTable


def table_to_tensor(table: TokenTable) -> torch.Tensor:
    """[rows, seqLen+1] int64 tensor (the table is little-endian int64 already)."""
    flat = torch.frombuffer(bytearray(table.data), dtype=torch.int64)
    return flat.reshape(table.rows, table.cols)


def step_batch(tokens: torch.Tensor, seed: int, step: int, global_batch: int,
               rank: int, world_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's (inputs, targets) slice of step `step`'s global batch."""
    if global_batch % world_size:
        raise ValueError(f"global batch {global_batch} is not divisible by {world_size} workers")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    indices = torch.randint(0, tokens.shape[0], (global_batch,), generator=generator)
    per_rank = global_batch // world_size
    rows = tokens[indices[rank * per_rank:(rank + 1) * per_rank]]
    return rows[:, :-1], rows[:, 1:]
