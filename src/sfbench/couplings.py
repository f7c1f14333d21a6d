r"""Couplings: how a batch of noise is paired with a batch of data.

A coupling takes (x_data, noise, generator) and returns the pair in the
order used for training. ``independent`` keeps the product coupling;
``ot`` reorders the noise by the exact optimal-transport assignment within
the minibatch (OT-CFM). ``pairs`` is the coupling of a method trained on
given (noise, data) pairs (reflow, distillation): the noise is not drawn but
read with its data row, so the coupling function keeps the pair as given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

Coupling = Callable[[Tensor, Tensor, torch.Generator | None], tuple[Tensor, Tensor]]


def independent(x_data: Tensor, noise: Tensor, generator: torch.Generator | None = None):
    """The product coupling p_data x N(0, I): pairs as drawn."""
    return x_data, noise


def ot_assignment(source: Tensor, target: Tensor) -> Tensor:
    r"""The permutation p minimising :math:`\sum_j \lVert source_{p(j)} - target_j \rVert^2`.

    Exact discrete optimal transport between the two empirical measures with
    uniform weights 1/n (POT's network simplex, ``ot.emd``), on the squared
    Euclidean cost, computed in float64 on the CPU. Between two uniform
    measures of equal size every vertex of the transport polytope is a
    permutation matrix (Birkhoff-von Neumann) and the simplex returns a vertex,
    so the plan is read as an assignment without sampling from it.

    Args:
        source, target: [n, ...] tensors (flattened per sample for the cost).

    Returns:
        int64 tensor p of shape [n] on ``source``'s device: ``source[p]`` is
        paired with ``target``.

    Raises:
        ValueError: if the batch sizes differ.
        RuntimeError: if the solver did not return a permutation (it did not converge).
    """
    if source.shape[0] != target.shape[0]:
        raise ValueError(
            f"OT coupling needs batches of equal size, got {source.shape[0]} and {target.shape[0]}"
        )
    import ot  # here, not at module level: importing POT costs ~1 s per process

    n = source.shape[0]
    a = source.detach().reshape(n, -1).to("cpu", torch.float64).numpy()
    b = target.detach().reshape(n, -1).to("cpu", torch.float64).numpy()
    cost = ot.dist(a, b, metric="sqeuclidean")
    weights = np.full(n, 1.0 / n)
    # numItermax well above the default 1e5: a 512 x 512 problem can need more pivots.
    plan = ot.emd(weights, weights, cost, numItermax=10_000_000)
    perm = plan.argmax(axis=0)  # for each target j, the source i it receives mass from
    if not (np.allclose(plan[perm, np.arange(n)], 1.0 / n) and len(set(perm.tolist())) == n):
        raise RuntimeError("ot.emd did not return a permutation; the OT solve did not converge")
    return torch.as_tensor(perm, dtype=torch.int64, device=source.device)


def minibatch_ot(x_data: Tensor, noise: Tensor, generator: torch.Generator | None = None):
    r"""Minibatch optimal-transport coupling (Tong et al. 2024; Pooladian et al. 2023).

    The noise batch is reordered so that noise i is paired with data i by
    the exact OT assignment on the squared Euclidean cost
    (:func:`ot_assignment`). Deterministic: no sampling from the plan (the
    reference TorchCFM code samples pairs from it with replacement, which
    repeats some noise and drops other), so ``generator`` is not used.
    As the batch grows the pairs approach the OT plan between N(0, I) and
    the data, whose straight-line interpolants cross less, so the learned
    flow is straighter (:mod:`sfbench.eval.straightness`).
    """
    return x_data, noise[ot_assignment(noise, x_data)]


PAIRS = "pairs"

COUPLINGS: dict[str, Coupling] = {
    "independent": independent,
    "ot": minibatch_ot,
    # Stored pairs are already coupled: keep them as given (the loss passes the
    # stored noise instead of fresh draws, :func:`sfbench.losses.training_loss`).
    PAIRS: independent,
}
