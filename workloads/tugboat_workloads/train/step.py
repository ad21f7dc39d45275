"""One optimisation step: forward, loss, cross-worker statistics, the non-finite check, backward.

Decides the loss (next-token cross-entropy plus the model's weighted aux loss), the statistics
every worker agrees on, and that a non-finite loss or gradient stops the step *before* the
optimiser touches the weights (so the last checkpoint stays good). Must not decide scheduling,
checkpointing or logging.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

GRAD_CLIP_NORM = 1.0


@dataclass(frozen=True)
class StepStats:
    loss: float  # next-token cross-entropy, averaged over workers
    aux_loss: float
    dropped_fraction: float
    router_entropy: list[float]  # per layer
    expert_load: list[list[float]]  # [layers][experts]
    grad_norm: float


class NonFiniteLossError(Exception):
    pass


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    bf16: bool,
    all_reduce_mean: Callable[[torch.Tensor], torch.Tensor],
) -> StepStats:
    with torch.autocast(device_type=inputs.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(inputs)
    cross_entropy = F.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]), targets.reshape(-1))
    layers, experts = out.expert_load.shape
    packed = torch.cat([
        torch.stack([cross_entropy.detach(), out.aux_loss.detach().float(), out.dropped_fraction.float()]),
        out.router_entropy.detach().float(), out.expert_load.detach().float().reshape(-1),
    ])
    # Reduced before the finiteness check so every worker takes the same branch.
    packed = all_reduce_mean(packed).cpu()
    loss, aux = float(packed[0]), float(packed[1])
    if not (math.isfinite(loss) and math.isfinite(aux)):
        raise NonFiniteLossError(f"non-finite loss (cross-entropy {loss}, aux {aux})")
    optimizer.zero_grad(set_to_none=True)
    (cross_entropy + out.aux_loss).backward()
    # DDP has averaged the gradients, so every worker sees the same norm.
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM))
    if not math.isfinite(grad_norm):
        raise NonFiniteLossError(f"non-finite gradient norm ({grad_norm}) at loss {loss}")
    optimizer.step()
    return StepStats(
        loss=loss,
        aux_loss=aux,
        dropped_fraction=float(packed[2]),
        router_entropy=packed[3:3 + layers].tolist(),
        expert_load=packed[3 + layers:].reshape(layers, experts).tolist(),
        grad_norm=grad_norm,
    )
