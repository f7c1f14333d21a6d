r"""Bits per dimension of discrete images from a continuous density: dequantization and conversion.

Setting. Pixels are discrete, v in {0, ..., L - 1}^D, and the model sees
x_v = 2 v / (L - 1) - 1 (:mod:`sfbench.data.images`): a grid of spacing
h = 2 / (L - 1) on [-1, 1]. Give each level the cell of width h centred on
its grid point, C_v = x_v + [-h/2, h/2)^D (volume h^D). A continuous density
p on R^D defines the discrete model

.. math::
    P(v) = \int_{C_v} p(x)\, dx = h^D\, \mathbb{E}_{u \sim U[0,1)^D}\big[p(x_v + h (u - 1/2))\big].

Uniform dequantization draws x = x_v + h (u - 1/2), i.e.

.. math:: x = \frac{2 (v + u - 1/2)}{L - 1} - 1, \qquad u \sim U[0, 1)^D,

and by Jensen's inequality

.. math:: -\log P(v) \le \mathbb{E}_u[-\log p(x)] - D \log h,

so, in bits per dimension (exact conversion, no hidden offset),

.. math::
    \mathrm{bpd} = \frac{\mathrm{NLL}_{\mathrm{nats}}(x) - D \log h}{D \ln 2}
                 = \frac{\mathrm{NLL}_{\mathrm{nats}}(x)}{D \ln 2} + \log_2 \frac{L - 1}{2}.

For L = 17 (digits) the offset is log2 8 = 3 bits; for L = 256 it is
log2 127.5 = 6.994 bits. (The common alternative, cells [v, v + 1) / L on
[0, 1] mapped to [-1, 1], has cells of width 2 / L that do *not* centre on
the training grid x_v; its offset would be log2(L / 2).) Averaged over the
data and u, bpd is an upper bound on the model's discrete cross-entropy in
bits per dimension, and hence on the data's entropy.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from sfbench.data.images import to_levels, to_model_scale


def level_spacing(levels: int) -> float:
    """h = 2 / (levels - 1), the grid spacing (and cell width) in model scale."""
    if levels < 2:
        raise ValueError(f"levels must be at least 2, got {levels}")
    return 2.0 / (levels - 1)


def bits_offset(levels: int) -> float:
    """log2((levels - 1) / 2) = -log2 h, added per dimension in :func:`bits_per_dim`."""
    return -math.log2(level_spacing(levels))


def bits_per_dim(nll_nats, dim: int, levels: int):
    """bpd = NLL_nats / (D ln 2) + log2((L - 1) / 2) for NLLs of dequantized points."""
    return nll_nats / (dim * math.log(2.0)) + bits_offset(levels)


def stderr(values: Tensor) -> float:
    """Standard error of the mean of per-point values (NaN for a single point)."""
    n = values.shape[0]
    return float(values.std() / math.sqrt(n)) if n > 1 else float("nan")


def discrete_values(x, levels: int, atol: float = 1e-4) -> np.ndarray:
    """Levels v of images x given in model scale, checked to lie on the grid (to ``atol`` * h)."""
    x = np.asarray(x, dtype=np.float64)
    v = to_levels(x, levels)
    off = np.abs(to_model_scale(v, levels).astype(np.float64) - x).max(initial=0.0)
    if off > atol * level_spacing(levels) or not np.isfinite(x).all():
        raise ValueError(
            f"images are not on the {levels}-level grid 2 v / {levels - 1} - 1 "
            f"(largest distance {off:.3g}); bits/dim needs discrete data"
        )
    return v


def dequantize(v: np.ndarray, levels: int, seed: int) -> np.ndarray:
    """x = 2 (v + u - 1/2) / (L - 1) - 1 with u ~ U[0, 1) drawn from ``seed`` (float64)."""
    u = np.random.default_rng(seed).random(np.shape(v))
    return 2.0 * (np.asarray(v, dtype=np.float64) + u - 0.5) / (levels - 1) - 1.0


def nll_bits_per_dim(
    model, x, levels: int, *, seed: int = 0, dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu", **nll_options
) -> dict:
    """Bits/dim of discrete images x (model scale, [N, ...]) through the probability-flow ODE.

    Dequantizes x once with ``seed``, runs :func:`sfbench.eval.nll.nll_nats`
    (``nll_options``: tolerances, truncation, divergence, probes), converts.
    Returns the summary with every setting, per-sample bits in ``bits``.
    """
    from sfbench.eval.nll import nll_nats

    v = discrete_values(x, levels)
    xd = torch.as_tensor(dequantize(v, levels, seed), dtype=dtype, device=device)
    res = nll_nats(model, xd, **nll_options)
    dim = int(np.prod(v.shape[1:]))
    bits: Tensor = bits_per_dim(res.nll_nats.double().cpu(), dim, levels)
    return {
        "nll_bits_per_dim_mean": float(bits.mean()),
        "nll_bits_per_dim_stderr": stderr(bits),
        "bits": bits,
        **res.summary(),
        "levels": levels,
        "dim": dim,
        "dequantization": "uniform on cells of width 2/(L-1) centred on 2v/(L-1)-1",
        "dequantization_seed": seed,
        "bits_offset_per_dim": bits_offset(levels),
    }
