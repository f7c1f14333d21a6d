"""Couplings: how a batch of noise is paired with a batch of data.

A coupling takes (x_data, noise, generator) and returns the pair in the
order used for training. ``independent`` keeps the product coupling; later
couplings (minibatch OT, reflow pairs) reorder or replace the noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Coupling = Callable[[Tensor, Tensor, torch.Generator | None], tuple[Tensor, Tensor]]


def independent(x_data: Tensor, noise: Tensor, generator: torch.Generator | None = None):
    """The product coupling p_data x N(0, I): pairs as drawn."""
    return x_data, noise


COUPLINGS: dict[str, Coupling] = {"independent": independent}
