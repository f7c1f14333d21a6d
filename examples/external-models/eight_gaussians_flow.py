"""A model sfbench did not train: the exact rectified-flow velocity of 8gaussians.

A plain PyTorch module, written as a user of torchcfm or flow_matching would: t = 0 is
noise, t = 1 data, ``forward(x, t)`` returns the velocity. It imports nothing from sfbench;
`eight_gaussians_flow.yaml` declares it to sfbench (docs/EXTERNAL.md).

On the path x_t = t x1 + (1 - t) x0 with x0 ~ N(0, I) and x1 from a mixture of isotropic
Gaussians N(mu_k, s^2 I) of equal weights, x_t given component k is N(t mu_k, v I) with
v = t^2 s^2 + (1 - t)^2, and the marginal velocity E[x1 - x0 | x_t] is the posterior mix of
    mu_k + (t s^2 - (1 - t)) / v (x_t - t mu_k)
(Gaussian conditioning; Liu et al. 2023, "Flow Straight and Fast", for the path).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class EightGaussiansFlow(nn.Module):
    def __init__(self, radius: float = 2 * math.sqrt(2), std: float = 1 / (2 * math.sqrt(2))):
        super().__init__()
        angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
        self.register_buffer("means", radius * torch.stack([angles.cos(), angles.sin()], 1))
        self.var = std**2

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(x.dtype).reshape(-1, 1, 1)  # [batch, 1, 1] against [batch, k, 2]
        means = self.means.to(x.dtype)
        v = t**2 * self.var + (1 - t) ** 2
        centred = x[:, None, :] - t * means  # x_t - t mu_k
        weights = torch.softmax(-centred.pow(2).sum(-1, keepdim=True) / (2 * v), dim=1)
        per_component = means + (t * self.var - (1 - t)) / v * centred
        return (weights * per_component).sum(1)


def make() -> nn.Module:
    """What the spec's ``network:`` names: a callable returning the module."""
    return EightGaussiansFlow()
