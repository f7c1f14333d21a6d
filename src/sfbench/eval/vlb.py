r"""The variational bound of a DDPM model on discrete images, in bits per dimension.

Ho et al. (2020), eq. (5), in DDPM's own step index k (k = 0 data, k = T
noise; on sfbench's time axis step k is t = 1 - k / T):

.. math::
    -\log p_\theta(x_0) \le L = L_T + \sum_{k=2}^{T} L_{k-1} + L_0,

    L_T = \mathrm{KL}\big(q(x_T | x_0) \,\|\, N(0, I)\big),
    \qquad L_{k-1} = \mathrm{KL}\big(q(x_{k-1} | x_k, x_0) \,\|\, p_\theta(x_{k-1} | x_k)\big),
    \qquad L_0 = -\log p_\theta(x_0 | x_1).

With alphabar_k = alpha_k^2 of the schedule, beta_k = 1 - alphabar_k / alphabar_{k-1}:

- q(x_{k-1} | x_k, x_0) = N(mu~_k(x_k, x_0), beta~_k I),
  mu~_k = sqrt(alphabar_{k-1}) beta_k / (1 - alphabar_k) x_0
  + sqrt(1 - beta_k) (1 - alphabar_{k-1}) / (1 - alphabar_k) x_k,
  beta~_k = (1 - alphabar_{k-1}) beta_k / (1 - alphabar_k);
- p_theta(x_{k-1} | x_k) = N(mu~_k(x_k, x0_hat), sigma_k^2 I) with
  x0_hat = (x_k - sqrt(1 - alphabar_k) eps_theta) / sqrt(alphabar_k) (not
  clipped) and the "fixed small" variance sigma_k^2 = beta~_k, so
  L_{k-1} = |mu~_k(x_k, x_0) - mu~_k(x_k, x0_hat)|^2 / (2 beta~_k);
- the decoder L_0 is the discretized Gaussian of Ho et al. (their eq. 13):
  each pixel's probability is the mass of N(x0_hat(x_1), sigma_1^2) on its
  cell [x - h/2, x + h/2] (h = 2 / (L - 1), the grid of
  :mod:`sfbench.data.images`), with the outer cells extended to -inf / +inf.
  beta~_1 = 0, so sigma_1^2 = beta~_2 (the clipped variance of Ho et al.'s code).

L is an upper bound on -log p_theta(x_0) of the *discrete* data, so no
dequantization is needed: bits/dim = L / (D ln 2). Each L_{k-1} is estimated
with one draw x_k ~ q(x_k | x_0) per image and step (step k's noise for all
images from the numpy stream (seed, k), so batching does not change it);
the bound costs T network evaluations per image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from sfbench.eval.bits import discrete_values, level_spacing, stderr
from sfbench.paths import DDPMSchedule


def log_discretized_gaussian(x: Tensor, mean: Tensor, std: Tensor | float, levels: int) -> Tensor:
    r"""log P(x) per pixel: the mass of N(mean, std^2) on the cell of the grid point x.

    Cells are [x - h/2, x + h/2] with h = 2 / (levels - 1), the lowest level's
    extended to -inf and the highest's to +inf, so the probabilities of all
    levels sum to one. Computed in float64 as log(Phi(b) - Phi(a)) on the
    side of the mean where it does not cancel.
    """
    x, mean = x.double(), mean.double()
    std = torch.as_tensor(std, dtype=torch.float64)
    half = level_spacing(levels) / 2.0
    a = torch.where(x <= -1.0 + half / 2, -math.inf, (x - half - mean) / std)
    b = torch.where(x >= 1.0 - half / 2, math.inf, (x + half - mean) / std)
    # Phi(b) - Phi(a) = Phi(-a) - Phi(-b): use the side where both lie left of 0 or straddle it.
    flip = (a + b) > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log(-torch.expm1(log_lo - log_hi))


def _coefficients(schedule: DDPMSchedule) -> dict[str, Tensor]:
    """alphabar_k, beta_k, beta~_k for k = 0..T (float64; index k, entry 0 unused for betas)."""
    steps = torch.arange(schedule.num_steps + 1)
    abar = schedule(schedule.t_of_step(steps)).alpha.double() ** 2
    abar[0] = 1.0
    beta = torch.zeros_like(abar)
    beta[1:] = 1.0 - abar[1:] / abar[:-1]
    beta_tilde = torch.zeros_like(abar)
    beta_tilde[1:] = (1.0 - abar[:-1]) * beta[1:] / (1.0 - abar[1:])
    return {"abar": abar, "beta": beta, "beta_tilde": beta_tilde}


def _posterior_mean(c: dict, k: int, x0: Tensor, xk: Tensor) -> Tensor:
    abar, beta = c["abar"], c["beta"]
    coef0 = abar[k - 1].sqrt() * beta[k] / (1.0 - abar[k])
    coefk = (1.0 - beta[k]).sqrt() * (1.0 - abar[k - 1]) / (1.0 - abar[k])
    return coef0 * x0 + coefk * xk


def ddpm_vlb_bits_per_dim(
    model, x, levels: int, *, seed: int = 0, batch_size: int = 500,
    dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
) -> dict:
    """The bound L of Ho et al. for discrete images x (model scale [N, ...]) in bits/dim.

    The network runs on ``device`` (where the model is); the bound's sums stay
    in float64 on the CPU.

    ``model`` is any path model on a :class:`~sfbench.paths.DDPMSchedule`
    (a trained ``ddpm`` network or the oracle); its eps prediction at
    t = 1 - k / T is eps_theta(x_k, k). Returns the mean and standard error
    of bits/dim, the share of each term, per-image bits in ``bits`` and the
    settings.
    """
    schedule = model.schedule
    if not isinstance(schedule, DDPMSchedule):
        raise ValueError(
            f"the variational bound needs a discrete DDPM schedule, got {schedule.describe()}"
        )
    v = discrete_values(x, levels)
    x0_all = torch.as_tensor(2.0 * v / (levels - 1) - 1.0, dtype=torch.float64)
    c = _coefficients(schedule)
    big_t = schedule.num_steps
    dim = math.prod(x0_all.shape[1:])
    ab_t = c["abar"][big_t]
    prior = (0.5 * ((1 - ab_t) + ab_t * x0_all**2 - 1 - torch.log(1 - ab_t))).flatten(1).sum(1)
    diffusion = torch.zeros(x0_all.shape[0], dtype=torch.float64)
    decoder = torch.zeros_like(diffusion)
    with torch.no_grad():
        for k in range(1, big_t + 1):
            # One stream per step for all images: independent of batch_size.
            rng = np.random.default_rng([seed, k])
            eps_all = torch.as_tensor(rng.standard_normal(tuple(x0_all.shape)))
            t = schedule.t_of_step(k).to(dtype)
            for start in range(0, x0_all.shape[0], batch_size):
                part = slice(start, start + batch_size)
                x0, eps = x0_all[part], eps_all[part]
                xk = c["abar"][k].sqrt() * x0 + (1 - c["abar"][k]).sqrt() * eps
                eps_hat = model.predict(xk.to(device, dtype), t.to(device)).eps.double().cpu()
                x0_hat = (xk - (1 - c["abar"][k]).sqrt() * eps_hat) / c["abar"][k].sqrt()
                if k == 1:
                    std = c["beta_tilde"][2].sqrt() if big_t > 1 else c["beta"][1].sqrt()
                    log_p = log_discretized_gaussian(x0, x0_hat, std, levels)
                    decoder[part] = -log_p.flatten(1).sum(1)
                else:
                    diff = _posterior_mean(c, k, x0, xk) - _posterior_mean(c, k, x0_hat, xk)
                    diffusion[part] += (diff**2).flatten(1).sum(1) / (2 * c["beta_tilde"][k])
    terms = {"prior": prior, "diffusion": diffusion, "decoder": decoder}
    nats = terms["prior"] + terms["diffusion"] + terms["decoder"]
    bits = nats / (dim * math.log(2.0))
    n = bits.shape[0]
    per_dim = {f"vlb_{k}_bits_per_dim": float(v.mean()) / (dim * math.log(2.0))
               for k, v in terms.items()}
    return {
        "vlb_bits_per_dim_mean": float(bits.mean()),
        "vlb_bits_per_dim_stderr": stderr(bits),
        **per_dim,
        "bits": bits,
        "num_points": n,
        "levels": levels,
        "dim": dim,
        "num_steps": big_t,
        "decoder": "discretized Gaussian, cells of width 2/(L-1), outer cells to +-inf",
        "variance": "fixed small: beta~_k, beta~_2 at k = 1",
        "x_k_draws": "one per image and step; step k's noise from numpy stream (seed, k)",
        "seed": seed,
        "dtype": str(dtype).removeprefix("torch."),
        "schedule": schedule.describe(),
    }
