"""Top-k softmax routing: which expert slots each token gets, which slots overflow capacity,
and the router statistics and losses derived from that choice.

Pure tensor functions, no parameters and no modules. Everything shape-derived (the expert
capacity above all) is computed with tensor arithmetic, never Python int()/math.ceil on a
shape: the ONNX exporters would freeze such a value into the graph without a warning
(WORKLOADS.md), and parity would break at every other batch size.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Routing(NamedTuple):
    expert_index: torch.Tensor  # [tokens, k] int64, chosen experts, best first
    gate_weight: torch.Tensor  # [tokens, k] renormalised top-k gates, 0 where the slot dropped
    keep: torch.Tensor  # [tokens, k] bool, slot fits its expert's capacity
    load: torch.Tensor  # [experts] fraction of routed slots per expert (before drops), sums to 1
    mean_prob: torch.Tensor  # [experts] mean router probability (softmax of the raw logits)
    entropy: torch.Tensor  # [] mean entropy (nats) of the full gate distribution
    dropped_fraction: torch.Tensor  # [] dropped slots / routed slots
    balance_loss: torch.Tensor  # [] E * sum_e f_e * P_e (1.0 when perfectly uniform)
    z_loss: torch.Tensor  # [] mean squared logsumexp of the router logits


def expert_capacity(num_slots: torch.Tensor, experts: int, capacity_factor: float) -> torch.Tensor:
    """ceil(capacity_factor * slots / experts) as a 0-d tensor (see module docstring for why)."""
    return torch.ceil(num_slots.to(torch.float32) * (capacity_factor / experts))


def slot_positions(expert_index: torch.Tensor, experts: int) -> torch.Tensor:
    """Queue position of every (token, k) slot inside its expert, GShard priority order:
    every token's first choice is queued before any second choice, then token order."""
    tokens, k = expert_index.shape[0], expert_index.shape[1]
    slot_major = expert_index.t().reshape(-1, 1)
    one_hot = (slot_major == torch.arange(experts, device=expert_index.device)).to(torch.int64)
    position = ((torch.cumsum(one_hot, dim=0) - 1) * one_hot).sum(dim=1)
    return position.reshape(k, tokens).t()


def load_balance_loss(load: torch.Tensor, mean_prob: torch.Tensor) -> torch.Tensor:
    """Switch/GShard auxiliary loss E * sum_e f_e * P_e; only P_e carries a gradient."""
    experts = load.shape[0]
    return experts * torch.sum(load.detach() * mean_prob)


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE z-loss: keeps router logits small so the softmax stays well conditioned."""
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def route(
    logits: torch.Tensor,
    top_k: int,
    temperature: torch.Tensor,
    capacity_factor: float | None,
    noise_std: float = 0.0,
) -> Routing:
    """Route [tokens, experts] router logits. capacity_factor None means no capacity limit."""
    experts = logits.shape[-1]
    noisy = logits + noise_std * torch.randn_like(logits) if noise_std > 0 else logits
    log_probs = torch.log_softmax(noisy / temperature, dim=-1)
    probs = log_probs.exp()
    top_probs, expert_index = torch.topk(probs, top_k, dim=-1)
    gates = top_probs / top_probs.sum(dim=-1, keepdim=True)

    routed = (expert_index.unsqueeze(-1) == torch.arange(experts, device=logits.device))
    counts = routed.to(probs.dtype).sum(dim=(0, 1))
    load = counts / counts.sum()
    if capacity_factor is None:
        keep = torch.ones_like(expert_index, dtype=torch.bool)
    else:
        capacity = expert_capacity(counts.sum(), experts, capacity_factor)
        keep = slot_positions(expert_index, experts).to(torch.float32) < capacity
    dropped = 1.0 - keep.to(probs.dtype).mean()
    # The balancing force must not depend on the guard's knobs: with P_e taken from the tempered
    # softmax, a temperature bump would scale its gradient by 1/T and weaken load balancing.
    mean_prob = torch.softmax(logits, dim=-1).mean(dim=0)
    return Routing(
        expert_index=expert_index,
        gate_weight=gates * keep.to(gates.dtype),
        keep=keep,
        load=load,
        mean_prob=mean_prob,
        entropy=-(probs * log_probs).sum(dim=-1).mean(),
        dropped_fraction=dropped,
        balance_loss=load_balance_loss(load, mean_prob),
        z_loss=router_z_loss(logits),
    )
