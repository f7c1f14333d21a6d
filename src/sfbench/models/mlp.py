"""A time-conditioned MLP for low-dimensional (2-D) data."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "elu": nn.ELU}


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoidal features of t in [0, 1].

    t is multiplied by ``scale`` first. The frequencies are 1 .. 1/max_period
    per unit of ``scale * t``, so the scale sets what the network can resolve:
    ``scale = T`` makes the argument a DDPM step index (Ho et al. 2020), while
    a continuous t in [0, 1] is served better by a small scale (30): with 1000
    the highest features oscillate ~160 times over [0, 1], the learned field
    wiggles in t and adaptive ODE solvers take ~6x the steps. The scale of a
    method is chosen in one place, :func:`sfbench.models.presets.time_embed_scale`.
    """

    def __init__(self, dim: int, scale: float = 1000.0, max_period: float = 10000.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"embedding dim must be even, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.scale = scale

    def forward(self, t: Tensor) -> Tensor:
        args = (self.scale * t.float())[:, None] * self.freqs[None, :]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLP(nn.Module):
    """x, t -> vector shaped like x: [x, embed(t)] through ``depth`` hidden layers.

    The time embedding is added to every hidden layer (as in U-Net residual
    blocks), which trains faster on 2-D paths than feeding it only once.
    ``time_embed_scale`` multiplies t before the sinusoidal features; its
    default 1000 is what every model file written before it was recorded was
    trained with, so such files rebuild exactly.
    """

    def __init__(
        self,
        dim: int = 2,
        width: int = 128,
        depth: int = 3,
        activation: str = "silu",
        time_embed_dim: int = 64,
        time_embed_scale: float = 1000.0,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; valid: {', '.join(sorted(ACTIVATIONS))}"
            )
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be positive, got depth={depth}, width={width}")
        if not time_embed_scale > 0:
            raise ValueError(f"time_embed_scale must be positive, got {time_embed_scale}")
        self.dim = dim
        self.sample_shape = (dim,)  # what NetworkModel declares
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(time_embed_dim, scale=float(time_embed_scale)),
            nn.Linear(time_embed_dim, width),
            ACTIVATIONS[activation](),
        )
        self.input = nn.Linear(dim, width)
        self.time_proj = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.act = ACTIVATIONS[activation]()
        self.output = nn.Linear(width, dim)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"MLP expects x of shape [batch, {self.dim}], got {list(x.shape)}")
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        emb = self.time_embed(t)
        h = self.input(x)
        for proj, layer in zip(self.time_proj, self.hidden, strict=True):
            h = layer(self.act(h + proj(emb)))
        return self.output(self.act(h))
