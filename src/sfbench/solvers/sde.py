r"""The reverse-time SDE, integrated by Euler-Maruyama.

On our time axis (t = 0 noise, t = 1 data), for any :math:`\gamma(t) \ge 0`

.. math:: dx = \left[v(x, t) + \tfrac{\gamma(t)^2}{2} \nabla \log p_t(x)\right] dt + \gamma(t)\, dW

has the path's marginals :math:`p_t`: the added drift and diffusion cancel in
the Fokker-Planck equation, :math:`-\nabla \cdot (p \tfrac{\gamma^2}{2} \nabla \log p)
+ \tfrac{\gamma^2}{2} \Delta p = 0`, leaving the continuity equation of
:math:`v`. The path's own (diffusion-model) choice is
:math:`\gamma^2 = g^2(t)` = ``schedule.diffusion_squared(t)``
(reference 004, section 9; Song et al. 2021, run on our time axis), which is infinite at the
noise end of flow paths, where alpha = 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfbench.model import PathModel
from sfbench.solvers.grids import Callback, walk_grid
from sfbench.solvers.noise import NoiseSource


def euler_maruyama(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    r"""Euler-Maruyama on the reverse SDE, with a step-size-dependent cap on gamma.

    One step from t to s = t + h, with the sample's Brownian increment
    :math:`\Delta W` = ``noise.step(t, s, x)`` (variance h):

    .. math::
        \gamma^2 &= \min\left(g^2(t),\ \sigma_t^2 / h\right), \\
        x_s &= x_t + h \left[v - \frac{\gamma^2}{2 \sigma_t} \hat\epsilon\right]
              + \gamma\, \Delta W,

    using :math:`\nabla \log p_t = -\hat\epsilon / \sigma_t` so that no score
    is formed (it is singular where sigma = 0; there gamma = 0).

    Why the cap: :math:`g^2` is unbounded near the noise end of flow paths,
    and a plain Euler-Maruyama step would then overshoot. With the cap the
    Langevin part of a step, :math:`-\tfrac{\gamma^2 h}{2\sigma_t^2}\sigma_t\hat\epsilon`,
    moves x at most half way towards the denoised mean :math:`\alpha_t \hat x_0`,
    and the injected noise has std at most :math:`\sigma_t`. Any gamma keeps the
    marginals in the continuous limit, and as h -> 0 the cap stops binding
    wherever g is finite, so the scheme converges to the path's reverse SDE.

    One model evaluation per step. The state at ``grid[-1]`` is returned as
    is (no final denoising step).

    Raises:
        ValueError: if the schedule's g^2 is negative or NaN on the grid.
    """

    def step(k: int, t: float, s: float, x: Tensor) -> Tensor:
        return euler_maruyama_step(model, x, t, s, noise.step(t, s, x))

    return walk_grid(grid, x, step, callback)


def euler_maruyama_step(model: PathModel, x: Tensor, t: float, s: float, dw: Tensor) -> Tensor:
    """One step of :func:`euler_maruyama` from t to s with the Brownian increment ``dw``.

    Shared with the predictor of :func:`~sfbench.solvers.pc.pc`. One model evaluation.
    """
    h = s - t
    t64 = torch.tensor(t, dtype=torch.float64)
    sigma = float(model.schedule(t64).sigma)
    g2 = float(model.schedule.diffusion_squared(t64))
    if not g2 >= 0:  # also catches NaN
        raise ValueError(f"diffusion_squared({t}) = {g2}: the reverse SDE is undefined there")
    gamma2 = min(g2, sigma**2 / h)
    pred = model.predict(x, t)
    # gamma^2 / (2 sigma) <= sigma / (2 h) -> 0 as sigma -> 0: the Langevin drift vanishes.
    langevin = gamma2 / (2.0 * sigma) if sigma > 0 else 0.0
    x = x + h * (pred.velocity - langevin * pred.eps)
    if gamma2 > 0:
        x = x + math.sqrt(gamma2) * dw
    return x
