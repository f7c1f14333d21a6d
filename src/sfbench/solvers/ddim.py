r"""DDIM and DDPM ancestral sampling for a general Gaussian path.

For x_t = alpha_t x0 + sigma_t eps, the Markov forward process from data
(t = 1) to noise (t = 0) has, for t < s, the posterior

.. math::
    q(x_s \mid x_t, x_0) = N\left(\alpha_s x_0 + \sqrt{\sigma_s^2 - c^2}\,
        \frac{x_t - \alpha_t x_0}{\sigma_t},\ c^2 I\right), \quad
    c^2 = \sigma_s^2 \left(1 - \frac{\alpha_t^2 \sigma_s^2}{\alpha_s^2 \sigma_t^2}\right).

DDIM (Song, Meng & Ermon 2021, eq. 12) plugs in the model's (x0, eps) and
scales the posterior std by eta:

.. math:: x_s = \alpha_s \hat x_0 + \sqrt{\sigma_s^2 - c^2}\,\hat\epsilon + c\, z, \quad
          c = \eta\, \sigma_s \sqrt{\max\left(0,\ 1 - \left(\tfrac{\alpha_t \sigma_s}
          {\alpha_s \sigma_t}\right)^2\right)}.

eta = 0 is deterministic (a first-order solver of the probability-flow ODE,
identical to Euler on the rectified-flow path); eta = 1 samples the posterior,
which on the DDPM schedule with the grid of whole steps t = 1 - k/T is Ho et
al.'s ancestral sampler with variance beta-tilde. Both evaluate the model only
at the grid points t_i, i < N, so on the default ``uniform`` grid, whose points
are whole steps on a discrete-time schedule (:mod:`.grids`), a DDPM network is
only evaluated at steps it was trained on. The bracket is non-negative on
every path whose SNR alpha / sigma increases in t, so both work for all methods.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfbench.model import PathModel
from sfbench.solvers.grids import Callback, walk_grid
from sfbench.solvers.noise import NoiseSource


def _alpha_sigma(model: PathModel, t: float) -> tuple[float, float]:
    c = model.schedule(torch.tensor(t, dtype=torch.float64))
    return float(c.alpha), float(c.sigma)


def posterior_std(alpha_t: float, sigma_t: float, alpha_s: float, sigma_s: float) -> float:
    r"""c / eta: the std of q(x_s | x_t, x0), :math:`\sigma_s \sqrt{1 - (\alpha_t \sigma_s /
    (\alpha_s \sigma_t))^2}`, for t < s.

    alpha_t = 0 (flow paths at t = 0): x_t carries no information about x0,
    the ratio is 0 and the posterior std is sigma_s. sigma_t = 0 (already at
    the data): the ratio is infinite and the posterior is a point mass.
    """
    if sigma_t == 0.0:
        return 0.0
    ratio = alpha_t * sigma_s / (alpha_s * sigma_t)
    return sigma_s * math.sqrt(max(0.0, 1.0 - ratio**2))


def ddim(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None, eta: float = 0.0,
) -> Tensor:
    r"""DDIM from grid[0] to grid[-1]: one posterior step per grid interval (see module doc).

    One model evaluation per step. ``eta`` in [0, 1] scales the posterior
    std; with eta = 1 this is :func:`ddpm_ancestral`.

    Raises:
        ValueError: if eta is outside [0, 1] (above 1 the deterministic
            part's coefficient :math:`\sqrt{\sigma_s^2 - c^2}` can be imaginary).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"ddim option eta must lie in [0, 1], got {eta}")

    def step(k: int, t: float, s: float, x: Tensor) -> Tensor:
        alpha_t, sigma_t = _alpha_sigma(model, t)
        alpha_s, sigma_s = _alpha_sigma(model, s)
        c = eta * posterior_std(alpha_t, sigma_t, alpha_s, sigma_s)
        pred = model.predict(x, t)
        x = alpha_s * pred.x0 + math.sqrt(max(0.0, sigma_s**2 - c**2)) * pred.eps
        if c > 0:
            # The standardised Brownian increment of the step, so that the noise of sample i
            # is one path, refined with the grid (see solvers.noise).
            x = x + c * noise.step_normal(t, s, x)
        return x

    return walk_grid(grid, x, step, callback)


def ddpm_ancestral(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    r"""Ancestral sampling: draw :math:`x_s \sim q(x_s \mid x_t, \hat x_0)` at every step.

    :func:`ddim` with eta = 1. On the DDPM schedule with ``steps = T - 1`` on
    the uniform grid with ``lattice="linspace"`` (DDPM steps T, T - 1, ..., 1)
    each step is exactly Ho et al. (2020), Algorithm 2, with
    :math:`\sigma_k^2 = \tilde\beta_k`; their last, noise-free step k = 1 -> 0
    is not taken, since sampling stops at ``t_end`` (k = 1).
    """
    return ddim(model, x, grid, noise, callback=callback, eta=1.0)
