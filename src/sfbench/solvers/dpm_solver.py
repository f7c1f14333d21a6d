r"""DPM-Solver++(2M): multistep second-order solver in the log-SNR (Lu et al. 2022).

With lambda = log(alpha / sigma) and the data prediction :math:`\hat x_0`,
the probability-flow ODE has the exact solution (Lu et al. 2022,
"DPM-Solver++", eq. 9)

.. math:: x_s = \frac{\sigma_s}{\sigma_t} x_t + \sigma_s \int_{\lambda_t}^{\lambda_s}
          e^{\lambda} \hat x_0(x_\lambda, \lambda)\, d\lambda ,

whose linear part is integrated exactly. DPM-Solver++(2M) (their Algorithm 2)
approximates :math:`\hat x_0` linearly in lambda from the current and the
previous evaluation: with :math:`h_i = \lambda_{t_i} - \lambda_{t_{i-1}}` and
:math:`r_i = h_{i-1} / h_i`,

.. math::
    D_i = \left(1 + \tfrac{1}{2 r_i}\right) \hat x_0(t_{i-1})
          - \tfrac{1}{2 r_i} \hat x_0(t_{i-2}), \qquad
    x_{t_i} = \frac{\sigma_{t_i}}{\sigma_{t_{i-1}}} x_{t_{i-1}}
              + \alpha_{t_i} \left(1 - e^{-h_i}\right) D_i .

The first step has no previous evaluation and uses :math:`D_1 = \hat x_0(t_0)`,
which is the DDIM step. Any step with an infinite h (an end where alpha = 0,
the noise end of the flow paths, or sigma = 0, the data end of rectified
flow) is also first order, :math:`D_i = \hat x_0(t_{i-1})`: e^{-h} = 0 there
and the step is x_s = (sigma_s / sigma_t) x_t + alpha_s x0_hat, the DDIM
step, while the extrapolation from a point at lambda = -inf is meaningless.
The step after an infinite one is first order for the same reason (r_i = inf).
Two first-order steps leave the global order at 2. No lower-order final step
is taken (diffusers' ``lower_order_final``): the benchmark measures the method as
written. One model evaluation per step; every method works, since every model
gives :math:`\hat x_0` through the conversions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfbench.model import PathModel
from sfbench.solvers.grids import Callback, walk_grid
from sfbench.solvers.logsnr import log_snr
from sfbench.solvers.noise import NoiseSource


def dpm_solver_pp_2m(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    """DPM-Solver++(2M) from grid[0] to grid[-1] (see the module doc). Deterministic; 1 NFE/step.

    Second order in the log-SNR step: pair it with the ``logsnr`` grid, for which it was
    designed (any grid works).
    """
    times = grid.to(torch.float64)
    c = model.schedule(times)
    alphas, sigmas = c.alpha.tolist(), c.sigma.tolist()
    lams = log_snr(model.schedule, times).tolist()
    previous: dict[str, Tensor | float] = {}  # x0 and h of the last step

    def step(i: int, t: float, s: float, x: Tensor) -> Tensor:
        h = lams[i + 1] - lams[i]
        x0 = model.predict(x, t).x0
        h_prev = previous.get("h")
        if h_prev is None or not (math.isfinite(h) and math.isfinite(h_prev)):
            d = x0
        else:
            half_inv_r = 0.5 * h / h_prev  # 1 / (2 r_i)
            d = (1.0 + half_inv_r) * x0 - half_inv_r * previous["x0"]
        previous.update(x0=x0, h=h)
        # 1 - e^{-h} by expm1: accurate for small h, and 1 at h = inf.
        return (sigmas[i + 1] / sigmas[i]) * x + alphas[i + 1] * (-math.expm1(-h)) * d

    return walk_grid(grid, x, step, callback)
