r"""EDM's stochastic Heun sampler (Karras et al. 2022, Algorithm 2), on any Gaussian path.

EDM works on the variance-exploding variable. For x_t = alpha_t x_data + sigma_t eps,
the rescaled state :math:`y = x / \alpha_t = x_{data} + \tilde\sigma \epsilon` with
:math:`\tilde\sigma = \sigma_t / \alpha_t` (:mod:`.logsnr`) is exactly EDM's
setting, and its probability-flow ODE is

.. math:: \frac{dy}{d\tilde\sigma} = \frac{y - \hat x_0}{\tilde\sigma} = \hat\epsilon(x, t).

The sampler is written in this variable; the model is always called on
x = alpha_t y at the t whose sigma~ is wanted (found by bisection for the
churned level). One step from grid time t_i (level sigma~_i) to t_{i+1}:

.. math::
    \gamma_i &= \min(S_{churn} / N, \sqrt 2 - 1) \text{ if } S_{tmin} \le \tilde\sigma_i
                \le S_{tmax}, \text{ else } 0, \qquad
    \hat\sigma = \tilde\sigma_i (1 + \gamma_i), \\
    \hat y &= y_i + \sqrt{\hat\sigma^2 - \tilde\sigma_i^2}\, S_{noise}\, z, \qquad
    d = \hat\epsilon(\alpha_{\hat t} \hat y, \hat t), \\
    y' &= \hat y + (\tilde\sigma_{i+1} - \hat\sigma)\, d, \qquad
    d' = \hat\epsilon(\alpha_{t_{i+1}} y', t_{i+1}), \\
    y_{i+1} &= \hat y + (\tilde\sigma_{i+1} - \hat\sigma)\, \tfrac{1}{2}(d + d').

On a step that ends at sigma~_{i+1} = 0 (the data end of rectified flow) the
correction is not made and y_{i+1} = y' (EDM's Algorithm 2 corrects only "if
sigma_{i+1} != 0"; k-diffusion and diffusers do the same): in EDM's form
d' = (y' - D(y'))/sigma~_{i+1} divides by zero there. The Euler step lands on
the denoiser's output, y' = x0_hat; one first-order step leaves the global
order at 2. A grid of N steps that ends at sigma = 0 thus costs 2N - 1
evaluations, any other 2N. With S_churn = 0 it is the
deterministic Heun method in sigma~ (EDM's Algorithm 1); its Euler predictor
alone is the DDIM step.

Choices where EDM's setting and ours differ:

- sigma~ is infinite where alpha = 0 (the first step of the flow paths), so
  the rescaled variable does not exist there; that step is Heun's method in t
  on the velocity (same order, same 2 NFE) and never churned. If it is also
  the last step onto sigma = 0 (one step of rectified flow), it is Euler's
  step in t, which there equals the limit of the Euler step in sigma~ (the
  DDIM step x_1 = x0_hat), at 1 NFE.
- The churned level is capped at sigma~(t_start): the model is only defined
  on the sampling interval. At the first step of a diffusion path this cap
  switches churn off.

Churn noise z is the sample's standardised Brownian increment over the step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfbench.model import PathModel
from sfbench.solvers.grids import Callback, walk_grid
from sfbench.solvers.logsnr import log_snr, t_of_sigma_edm
from sfbench.solvers.noise import NoiseSource
from sfbench.solvers.ode import heun_step


def _check_options(s_churn: float, s_tmin: float, s_tmax: float | None, s_noise: float) -> None:
    for name, value in (("s_churn", s_churn), ("s_tmin", s_tmin), ("s_noise", s_noise)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValueError(f"edm_heun option {name} must be a finite number >= 0, got {value!r}")
    if s_tmax is not None and not (isinstance(s_tmax, int | float) and s_tmax >= s_tmin):
        raise ValueError(f"edm_heun option s_tmax must be None or >= s_tmin, got {s_tmax!r}")


def edm_heun(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
    s_tmax: float | None = None, s_noise: float = 1.0,
) -> Tensor:
    """EDM's (stochastic) Heun sampler from grid[0] to grid[-1] (module doc).

    2 NFE per step, except 1 on a last step that ends at sigma = 0 (an Euler step).

    Args:
        s_churn: total churn S_churn (>= 0); 0 (default) is deterministic.
        s_tmin, s_tmax: churn only where s_tmin <= sigma/alpha <= s_tmax
            (None: no upper bound).
        s_noise: scale of the churn noise (EDM: slightly above 1 can offset
            the detail lost to an imperfect denoiser).

    Raises:
        ValueError: naming a bad option.
    """
    _check_options(s_churn, s_tmin, s_tmax, s_noise)
    schedule = model.schedule
    times = grid.to(torch.float64)
    c = schedule(times)
    alphas = c.alpha.tolist()
    sig = torch.exp(-log_snr(schedule, times)).tolist()  # sigma~ = sigma / alpha
    sig_ceiling = math.exp(-float(log_snr(schedule, schedule.t_start)))
    gamma_max = min(s_churn / (len(times) - 1), math.sqrt(2.0) - 1.0)
    upper = math.inf if s_tmax is None else s_tmax

    def step(i: int, t: float, s: float, x: Tensor) -> Tensor:
        to_data = sig[i + 1] == 0.0  # EDM takes an Euler step onto sigma~ = 0
        if alphas[i] == 0.0:  # sigma~ = inf: step in t (module doc)
            if to_data:
                return x + (s - t) * model.predict(x, t).velocity
            return heun_step(model, x, t, s)
        level = sig[i]
        gamma = gamma_max if s_tmin <= level <= upper else 0.0
        level_hat = min(level * (1.0 + gamma), sig_ceiling)
        t_hat, alpha_hat = t, alphas[i]
        if level_hat > level:
            t_hat = float(t_of_sigma_edm(schedule, level_hat))
            alpha_hat = float(schedule(torch.tensor(t_hat, dtype=torch.float64)).alpha)
            z = noise.step_normal(t, s, x)
            # x_hat = alpha_hat * (x / alpha_t + sqrt(level_hat^2 - level^2) S_noise z)
            spread = math.sqrt(level_hat**2 - level**2) * s_noise
            x = (alpha_hat / alphas[i]) * x + (alpha_hat * spread) * z
        # In x = alpha y: y_next = x_hat / alpha_hat + (sig_{i+1} - level_hat) d.
        carry, slope = alphas[i + 1] / alpha_hat, alphas[i + 1] * (sig[i + 1] - level_hat)
        d = model.predict(x, t_hat).eps
        x_euler = carry * x + slope * d
        if to_data:
            return x_euler
        d_next = model.predict(x_euler, s).eps
        return carry * x + slope * 0.5 * (d + d_next)

    return walk_grid(grid, x, step, callback)
