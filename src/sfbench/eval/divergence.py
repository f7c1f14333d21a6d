"""Divergence of a velocity field, the integrand of the likelihood ODE (:mod:`sfbench.eval.nll`).

``exact`` takes tr(dv/dx) from D vector-Jacobian products
batched by ``vmap`` (one forward, D vectorised backward passes; no Python
loop over dimensions); ``hutchinson`` estimates it as
(1/K) sum_k z_k^T (dv/dx) z_k with K = ``n_probes`` Rademacher probes
(Hutchinson 1989; FFJORD, Grathwohl et al. 2019), one vectorised backward
pass per probe. The probes of sample i are drawn once from (``probe_seed``,
i) and kept fixed along the whole trajectory, so the augmented ODE stays a
smooth ODE that dopri5 can integrate, each sample's log-density estimate is
unbiased, and batching does not change the result. ``auto`` (the default)
is exact up to :data:`EXACT_MAX_DIM` dimensions and Hutchinson beyond.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

Velocity = Callable[[Tensor], Tensor]
#: A divergence estimator: (velocity at fixed t, x [B, ...]) -> (v [B, ...], div v [B]).
Divergence = Callable[[Velocity, Tensor], tuple[Tensor, Tensor]]


#: ``divergence="auto"`` is exact up to this many dimensions per sample, Hutchinson beyond.
EXACT_MAX_DIM = 64
#: Default rows (cotangents x samples) per vectorised backward pass of the exact divergence.
VMAP_ROWS = 256
#: Up to this many dimensions per sample the exact divergence is a plain loop of
#: backward passes: at 2 dimensions, for an NLL of 300 points (the oracle and an MLP),
#: 13-15 % faster than the vectorised passes, whose ``torch.func`` dispatch outweighs
#: what they save; at 64 the vectorised passes win (``benchmarks/divergence.py``).
LOOP_MAX_DIM = 2


def exact_divergence(
    velocity: Velocity, x: Tensor, chunk_size: int | None = None
) -> tuple[Tensor, Tensor]:
    r"""v(x) and its exact divergence tr(dv/dx) per sample, from one forward pass.

    The rows e_k^T J of the Jacobian come from D vector-Jacobian products with
    the basis cotangents e_k (D = numel of one sample), batched by
    ``torch.func.vmap``, ``chunk_size`` cotangents per vectorised backward
    pass: one forward pass and D / chunk_size vectorised backward passes,
    memory O(chunk_size B D). The default, chunk_size * B ~ :data:`VMAP_ROWS`,
    was the fastest on CPU for the digits U-Net and the MLP: a single pass
    over all D cotangents of a batch of 64 was 3x slower than a Python loop of
    D backward passes (memory traffic), 256 rows per pass as fast or faster
    (``benchmarks/divergence.py``). Up to :data:`LOOP_MAX_DIM` dimensions (the
    2-D datasets), without a ``chunk_size``, the plain loop is used instead
    (``benchmarks/nll_flow_matching.py``).
    Because the cotangent e_k is applied to every sample at once, this is
    the per-sample Jacobian only if samples do not interact inside the model
    (true for MLPs, the U-Net (group norm is per sample) and the oracle;
    false under batch norm).
    """
    shape = x.shape[1:]
    dim = math.prod(shape)
    if dim <= LOOP_MAX_DIM and chunk_size is None:
        return _looped_divergence(velocity, x)
    chunk_size = chunk_size or max(1, VMAP_ROWS // x.shape[0])
    basis = torch.eye(dim, dtype=x.dtype, device=x.device).reshape(dim, 1, *shape)
    v, rows = _batched_vjp(velocity, x, basis.expand(dim, *x.shape), chunk_size)
    diag = rows.reshape(dim, x.shape[0], dim).diagonal(dim1=0, dim2=2)  # [B, D]: J_b[k, k]
    return v, diag.sum(-1)


def _batched_vjp(velocity: Velocity, x: Tensor, cotangents: Tensor,
                 chunk_size: int | None = None) -> tuple[Tensor, Tensor]:
    """v(x) and the vector-Jacobian products of every cotangent [K, *x.shape], vmapped."""
    # torch.func differentiates at its own level; without no_grad the caller's autograd would
    # also record every op (parameters require grad), tripling the cost under vmap.
    try:
        with torch.no_grad():
            v, vjp_fn = torch.func.vjp(velocity, x)
            (rows,) = torch.func.vmap(vjp_fn, chunk_size=chunk_size)(cotangents)
    except RuntimeError as err:
        if "vmap" not in str(err):
            raise
        # Under no_grad some CPU kernels' backward asks vmap for a channels-last layout it
        # does not implement ("NYI: querying is_contiguous inside of vmap"; diffusers'
        # UNet2DModel with attention, torch 2.x). With autograd on they take another path;
        # external models' parameters are frozen, so nothing extra is recorded for them.
        with torch.enable_grad():
            v, vjp_fn = torch.func.vjp(velocity, x)
            (rows,) = torch.func.vmap(vjp_fn, chunk_size=chunk_size)(cotangents)
    return v.detach(), rows.detach()


def _looped_divergence(velocity: Velocity, x: Tensor) -> tuple[Tensor, Tensor]:
    """v(x) and tr(dv/dx): one forward pass, then d v_k / d x_k by one backward pass each."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v = velocity(x)
        flat = v.reshape(x.shape[0], -1)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for k in range(flat.shape[1]):
            (grad,) = torch.autograd.grad(flat[:, k].sum(), x, retain_graph=k < flat.shape[1] - 1)
            div = div + grad.reshape(x.shape[0], -1)[:, k]
    return v.detach(), div


def rademacher_probes(
    seed: int, start: int, shape: tuple[int, ...], n_probes: int, dtype: torch.dtype,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Probes [n_probes, B, *shape] of +-1; sample ``start + b`` draws from (seed, start + b)."""
    per_sample = [
        np.random.default_rng([seed, start + b]).integers(0, 2, size=(n_probes, *shape[1:]))
        for b in range(shape[0])
    ]
    z = torch.as_tensor(np.stack(per_sample, axis=1), dtype=dtype, device=device)
    return 2.0 * z - 1.0


def hutchinson_divergence(probes: Tensor) -> Divergence:
    r"""The estimator tr(J) ~ (1/K) sum_k z_k^T J z_k with the fixed probes [K, B, ...]."""

    def divergence(velocity: Velocity, x: Tensor) -> tuple[Tensor, Tensor]:
        v, rows = _batched_vjp(velocity, x, probes)  # rows[k, b] = z_kb^T J_b
        return v, (rows * probes).flatten(2).sum(-1).mean(0)

    return divergence


DIVERGENCES = {
    "exact": "exact trace, D vectorised vector-Jacobian products",
    "hutchinson": "Hutchinson trace estimator, Rademacher probes fixed along the trajectory",
    "auto": f"exact up to {EXACT_MAX_DIM} dimensions per sample, hutchinson beyond",
}
