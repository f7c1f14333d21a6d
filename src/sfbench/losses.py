"""Training loss: target x weighting x t-density, one function for every method.

    L = E_{t, (x_data, eps) ~ coupling} [ w(t) * mean_d (f_theta(x_t, t) - y(x_data, eps, t))^2 ]

with y the conditional target of the method's prediction (reference 003,
Theorem 18: its minimiser is the marginal target).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfbench.couplings import COUPLINGS
from sfbench.model import NetworkModel
from sfbench.paths import Prediction
from sfbench.paths.parameterization import batch_coef


def per_sample_loss(
    model: NetworkModel, x_data: Tensor, t: Tensor, eps: Tensor, prediction: Tensor | None = None
) -> Tensor:
    """Weighted squared error of each sample at given t and eps.

    ``prediction`` replaces the network's output (used to show that the
    oracle's prediction minimises the loss).
    """
    method, c = model.method, model.schedule(t)
    x_t = batch_coef(c.alpha, x_data) * x_data + batch_coef(c.sigma, eps) * eps
    # The conditional target of reference 003 (Theorem 18), from the x_t above.
    target = Prediction(x_t=x_t, x0=x_data, eps=eps, coeffs=c).get(method.target)
    out = model(x_t, t) if prediction is None else prediction
    sq = (out - target).pow(2).flatten(1).mean(1)
    return method.weighting(c) * sq


def training_loss(
    model: NetworkModel, x_data: Tensor, generator: torch.Generator, noise: Tensor | None = None
) -> Tensor:
    """Monte-Carlo estimate of the method's loss on one batch.

    ``noise`` is the noise coupled with each data row, for the methods trained
    on given pairs (``method.needs_pairs``: reflow, distill); the others draw
    it from ``generator``.

    Raises:
        ValueError: if ``noise`` is missing for a paired method, given for
            another one, or of a different shape than ``x_data``.
    """
    method = model.method
    if method.needs_pairs != (noise is not None):
        raise ValueError(
            f"{method.name} is trained on given (noise, data) pairs; pass noise"
            if method.needs_pairs
            else f"{method.name} draws its own noise; noise= is only for paired methods"
        )
    if noise is None:
        eps = torch.randn(x_data.shape, generator=generator, device=x_data.device)
    elif noise.shape != x_data.shape:
        raise ValueError(f"noise has shape {list(noise.shape)}, data {list(x_data.shape)}")
    else:
        eps = noise
    x_data, eps = COUPLINGS[method.coupling](x_data, eps, generator)
    t = method.t_density(x_data.shape[0], generator, model.schedule, x_data.device)
    return per_sample_loss(model, x_data, t.to(x_data.dtype), eps).mean()
