r"""Noise schedules of Gaussian probability paths.

Every method in sfbench is a Gaussian path

.. math:: x_t = \alpha_t x_{data} + \sigma_t \epsilon, \qquad \epsilon \sim N(0, I),

with **t = 0 noise and t = 1 data** (the convention of the flow-matching
literature). Diffusion papers run time the other way; :class:`DDPMSchedule`
and :class:`VPSchedule` convert at their edges (diffusion time ``s = 1 - t``)
and nowhere else.

A schedule returns alpha, sigma and their time derivatives, plus the time
interval ``[t_start, t_end]`` on which its models are sampled and evaluated
(diffusion schedules stop short of the data end, where sigma = 0 and the
score is singular).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sfbench.paths.betas import check_betas, make_betas


@dataclass(frozen=True)
class ScheduleOutput:
    """alpha_t, sigma_t and their derivatives d/dt, each shaped like t."""

    alpha: Tensor
    sigma: Tensor
    d_alpha: Tensor
    d_sigma: Tensor


class Schedule:
    """Base class: subclasses implement :meth:`__call__`."""

    name: str = "schedule"
    t_start: float = 0.0  # noise end of the sampling interval
    t_end: float = 1.0  # data end of the sampling interval
    t_train_end: float = 1.0  # data end of the training t-density

    def __call__(self, t: Tensor) -> ScheduleOutput:  # pragma: no cover - interface
        raise NotImplementedError

    def prior_std(self) -> float:
        r"""Std of the Gaussian the samplers start from, N(0, sigma_{t_start}^2 I).

        The data term alpha_{t_start} x_data is dropped; it is exactly zero for
        the flow paths and below 1 % for the diffusion schedules.
        """
        return float(self(torch.tensor(self.t_start, dtype=torch.float64)).sigma)

    def diffusion_squared(self, t: Tensor) -> Tensor:
        r"""g(t)^2 of the forward SDE that has this path's marginals.

        In diffusion time s = 1 - t, the SDE dx = f x ds + g dW with
        f = d log alpha / ds has marginals N(alpha x, sigma^2) iff
        g^2 = d sigma^2/ds - 2 f sigma^2; on our time axis this reads
        g^2 = 2 sigma^2 (d_alpha / alpha - d_sigma / sigma)
            = 2 sigma (sigma d_alpha / alpha - d_sigma).
        It is infinite where alpha = 0 (the noise end of the flow paths).
        """
        s = self(t)
        return 2.0 * s.sigma * (s.sigma * s.d_alpha / s.alpha - s.d_sigma)

    @property
    def is_discrete(self) -> bool:
        """True for a discrete-time schedule, whose models are trained at whole steps only.

        Such a schedule has ``num_steps`` = T steps, step k at t = 1 - k / T
        (``t_of_step``), and the sampling interval runs from k = T to k = 1;
        the ``uniform`` grid then puts its points on whole steps
        (:mod:`sfbench.solvers.grids`). False here: continuous time.
        """
        return False

    def describe(self) -> dict:
        """Every setting that shapes the schedule, for result files."""
        return {"name": self.name, "t_start": self.t_start, "t_end": self.t_end}


class RectifiedFlowSchedule(Schedule):
    """Linear interpolation of rectified flow: alpha = t, sigma = 1 - t."""

    name = "rectified_flow"

    def __call__(self, t: Tensor) -> ScheduleOutput:
        one = torch.ones_like(t)
        return ScheduleOutput(alpha=t, sigma=1.0 - t, d_alpha=one, d_sigma=-one)


class OTSchedule(Schedule):
    """Lipman et al. (2023) optimal-transport path: alpha = t, sigma = 1 - (1 - sigma_min) t."""

    name = "cfm_ot"

    def __init__(self, sigma_min: float = 1e-4):
        if not 0.0 <= sigma_min < 1.0:
            raise ValueError(f"sigma_min must lie in [0, 1), got {sigma_min}")
        self.sigma_min = sigma_min

    def __call__(self, t: Tensor) -> ScheduleOutput:
        one = torch.ones_like(t)
        c = 1.0 - self.sigma_min
        return ScheduleOutput(alpha=t, sigma=1.0 - c * t, d_alpha=one, d_sigma=-c * one)

    def describe(self) -> dict:
        return {**super().describe(), "sigma_min": self.sigma_min}


class VPSchedule(Schedule):
    r"""Continuous VP-SDE of Song et al. (2021) with linear beta(s).

    In diffusion time s = 1 - t: beta(s) = beta_min + s (beta_max - beta_min),
    log alpha = -1/2 int_0^s beta = -(beta_min s + (beta_max - beta_min) s^2 / 2) / 2,
    sigma = sqrt(1 - alpha^2). Sampling stops at s = eps_end and training at
    s = eps_train (score_sde's 1e-3 and 1e-5).
    """

    name = "vp"

    def __init__(
        self,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        eps_end: float = 1e-3,
        eps_train: float = 1e-5,
    ):
        if not 0 < beta_min < beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        self.beta_min, self.beta_max = beta_min, beta_max
        self.eps_end, self.eps_train = eps_end, eps_train
        self.t_end = 1.0 - eps_end
        self.t_train_end = 1.0 - eps_train

    def __call__(self, t: Tensor) -> ScheduleOutput:
        s = 1.0 - t
        db = self.beta_max - self.beta_min
        log_alpha = -0.5 * (self.beta_min * s + 0.5 * db * s**2)
        alpha = torch.exp(log_alpha)
        sigma = torch.sqrt(-torch.expm1(2.0 * log_alpha))
        beta = self.beta_min + db * s
        d_alpha = 0.5 * beta * alpha  # d/dt = -d/ds
        d_sigma = -alpha * d_alpha / sigma
        return ScheduleOutput(alpha=alpha, sigma=sigma, d_alpha=d_alpha, d_sigma=d_sigma)

    def describe(self) -> dict:
        return {
            **super().describe(),
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "eps_train": self.eps_train,
        }


class DDPMSchedule(Schedule):
    r"""Discrete DDPM schedule (Ho et al. 2020): beta_k, k = 1..T, linear by default.

    The exact mapping between DDPM step k and our time is t = 1 - k / T, so
    k = T is the noise end (t = 0) and k = 0, the clean data, is t = 1.
    alphabar_k = prod_{i <= k} (1 - beta_i) is exact at every integer k;
    between them log alpha is a cubic spline through the T + 1 exact values,
    so continuous-time solvers can use a DDPM model too. A spline rather
    than DPM-Solver's piecewise-linear interpolation: its velocity is
    continuous (C^2), so high-order and adaptive solvers keep their order
    instead of stalling on a kink at every step.

    Other betas come from a named ``beta_schedule`` (:mod:`sfbench.paths.betas`:
    diffusers' names, so models trained elsewhere keep their own steps) or as
    explicit ``betas`` (a trained table; ``num_steps`` is then its length and
    ``beta_start`` / ``beta_end`` are its first and last values).
    """

    name = "ddpm"

    def __init__(
        self,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        num_steps: int = 1000,
        beta_schedule: str = "linear",
        betas: Sequence[float] | Tensor | None = None,
    ):
        if betas is not None:
            betas = check_betas(betas)
            beta_schedule = "trained"
            beta_start, beta_end, num_steps = float(betas[0]), float(betas[-1]), len(betas)
        if num_steps < 1:
            raise ValueError(f"num_steps must be positive, got {num_steps}")
        self.beta_start, self.beta_end, self.num_steps = beta_start, beta_end, num_steps
        self.beta_schedule = beta_schedule
        if betas is None:
            betas = check_betas(make_betas(beta_schedule, beta_start, beta_end, num_steps))
        self.betas = betas
        log_alphabar = torch.cumsum(torch.log1p(-betas), 0)
        # log alpha_k = log alphabar_k / 2, with alphabar_0 = 1 at the data end.
        log_alpha = torch.cat([torch.zeros(1, dtype=torch.float64), 0.5 * log_alphabar])
        self._log_alpha = log_alpha
        # Imported here: scipy.interpolate costs ~0.3 s per process that never needs it.
        from scipy.interpolate import CubicSpline

        # Spline coefficients per interval [k, k+1], highest power first.
        spline = CubicSpline(np.arange(num_steps + 1), log_alpha.numpy())
        self._coef = torch.as_tensor(spline.c.T.copy())  # [T, 4]
        # The network is trained on k = 1..T and sigma -> 0 like sqrt(k) below
        # k = 1, so sampling stops at the last trained step, k = 1.
        self.t_end = self.t_train_end = 1.0 - 1.0 / num_steps

    @property
    def is_discrete(self) -> bool:
        """True: the network is trained at the whole steps k = 1..T only (see :class:`Schedule`)."""
        return True

    def t_of_step(self, k: Tensor | int) -> Tensor:
        """Time of DDPM step k (0 = data, T = pure noise)."""
        return 1.0 - torch.as_tensor(k, dtype=torch.float64) / self.num_steps

    def step_of_t(self, t: Tensor) -> Tensor:
        """Inverse of :meth:`t_of_step` (a real number between integer steps)."""
        return (1.0 - t) * self.num_steps

    def __call__(self, t: Tensor) -> ScheduleOutput:
        coef = self._coef.to(device=t.device, dtype=t.dtype)
        u = self.step_of_t(t).clamp(0.0, float(self.num_steps))
        k = torch.clamp(torch.floor(u), max=self.num_steps - 1).long()
        a, b, c, d = coef[k].unbind(-1)
        du = u - k
        log_alpha = ((a * du + b) * du + c) * du + d
        slope = (3 * a * du + 2 * b) * du + c  # d log alpha / dk
        alpha = torch.exp(log_alpha)
        sigma = torch.sqrt(-torch.expm1(2.0 * log_alpha))
        d_alpha = -self.num_steps * slope * alpha  # dk/dt = -T
        d_sigma = -alpha * d_alpha / sigma.clamp_min(torch.finfo(t.dtype).tiny)
        return ScheduleOutput(alpha=alpha, sigma=sigma, d_alpha=d_alpha, d_sigma=d_sigma)

    def describe(self) -> dict:
        """Linear betas keep the keys they always had, so old records still compare equal;
        other schedules add their name, a trained table the sha256 of its float64 bytes."""
        out = {
            **super().describe(),
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "num_steps": self.num_steps,
        }
        if self.beta_schedule != "linear":
            out["beta_schedule"] = self.beta_schedule
        if self.beta_schedule == "trained":
            out["betas_sha256"] = hashlib.sha256(self.betas.numpy().tobytes()).hexdigest()
        return out


class VESchedule(Schedule):
    r"""Variance-exploding path of NCSN / VE-SDE: alpha = 1, geometric sigma.

    sigma_t = sigma_min (sigma_max / sigma_min)^(1 - t): sigma_max at the
    noise end, sigma_min at the data end. sigma_max should exceed the largest
    distance between data points (Song & Ermon 2020, technique 1).
    """

    name = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 10.0):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._log_ratio = math.log(sigma_max / sigma_min)

    def __call__(self, t: Tensor) -> ScheduleOutput:
        sigma = self.sigma_min * torch.exp((1.0 - t) * self._log_ratio)
        return ScheduleOutput(
            alpha=torch.ones_like(t),
            sigma=sigma,
            d_alpha=torch.zeros_like(t),
            d_sigma=-self._log_ratio * sigma,
        )

    def describe(self) -> dict:
        return {**super().describe(), "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (RectifiedFlowSchedule, OTSchedule, VPSchedule, DDPMSchedule, VESchedule)
}
