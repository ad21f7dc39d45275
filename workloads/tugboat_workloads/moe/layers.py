"""The transformer's building blocks: causal self-attention, one expert FFN, the MoE layer
that dispatches tokens to experts, and the pre-norm block that ties them together.

Decides how routed tokens reach their experts and come back. Must not decide routing policy
(gating.py does) nor touch training state (temperature and noise are passed in).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tugboat_workloads.moe.config import MoEConfig
from tugboat_workloads.moe.gating import Routing, route


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=-1)
        # [batch, heads, seq, head_dim]; -1 keeps the head size out of shape arithmetic.
        q, k, v = (t.reshape(batch, seq, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(attended.transpose(1, 2).reshape(batch, seq, d_model))


class Expert(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.down = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class MoELayer(nn.Module):
    """Top-k routed experts. Capacity (and so token dropping) applies in training only: at
    inference a token's output must not depend on which other requests share its batch."""

    def __init__(self, config: MoEConfig):
        super().__init__()
        self.top_k = config.top_k
        self.capacity_factor = config.capacity_factor
        self.router = nn.Linear(config.d_model, config.experts, bias=False)
        self.experts = nn.ModuleList(Expert(config.d_model, config.d_ff) for _ in range(config.experts))

    def forward(
        self, x: torch.Tensor, temperature: torch.Tensor, noise_std: float
    ) -> tuple[torch.Tensor, Routing]:
        flat = x.reshape(-1, x.shape[-1])
        capacity: float | None = self.capacity_factor if self.training else None
        routing = route(
            self.router(flat), self.top_k, temperature, capacity,
            noise_std if self.training else 0.0,
        )
        return self._dispatch(flat, routing).reshape(x.shape), routing

    def _dispatch(self, flat: torch.Tensor, routing: Routing) -> torch.Tensor:
        # Sparse dispatch: each expert runs only on its kept slots (k/E of the dense FLOPs).
        # index_add sums the k contributions of a token; the dynamo ONNX exporter keeps that
        # addition (the legacy one does not, WORKLOADS.md).
        top_k = routing.expert_index.shape[1]
        token_of_slot = torch.arange(flat.shape[0], device=flat.device).repeat_interleave(top_k)
        expert_of_slot = routing.expert_index.reshape(-1)
        weight_of_slot = routing.gate_weight.reshape(-1, 1)
        active = routing.keep.reshape(-1)
        out = torch.zeros_like(flat)
        for index, expert in enumerate(self.experts):
            # Every expert runs, even on zero rows, so DDP sees a gradient for each parameter.
            slots = torch.nonzero((expert_of_slot == index) & active).squeeze(1)
            tokens = token_of_slot[slots]
            out = out.index_add(0, tokens, expert(flat[tokens]) * weight_of_slot[slots].to(flat.dtype))
        return out


class Block(nn.Module):
    def __init__(self, config: MoEConfig):
        super().__init__()
        self.attn_norm = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config.d_model, config.heads)
        self.moe_norm = nn.LayerNorm(config.d_model)
        self.moe = MoELayer(config)

    def forward(
        self, x: torch.Tensor, temperature: torch.Tensor, noise_std: float
    ) -> tuple[torch.Tensor, Routing]:
        x = x + self.attn(self.attn_norm(x))
        moe_out, routing = self.moe(self.moe_norm(x), temperature, noise_std)
        return x + moe_out, routing
