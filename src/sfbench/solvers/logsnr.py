r"""Log signal-to-noise ratio of a path and its inverse.

For x_t = alpha_t x_data + sigma_t eps the half log-SNR is

.. math:: \lambda(t) = \log \frac{\alpha_t}{\sigma_t}, \qquad
          \tilde\sigma(t) = \frac{\sigma_t}{\alpha_t} = e^{-\lambda(t)},

where :math:`\tilde\sigma` is the noise level of the rescaled variable
x / alpha = x_data + sigma~ eps, EDM's sigma (Karras et al. 2022, section 4).
lambda increases strictly in t on every path of the benchmark (noise at t =
0, data at t = 1); it is -inf where alpha = 0 (the noise end of flow paths)
and +inf where sigma = 0 (the data end of rectified flow).
DPM-Solver steps in lambda and EDM's grid and sampler in sigma~; both need t
back from lambda, which :func:`t_of_log_snr` finds by bisection, so no
schedule has to provide an analytic inverse.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfbench.paths import Schedule


def log_snr(schedule: Schedule, t: Tensor | float) -> Tensor:
    """lambda(t) = log alpha_t - log sigma_t (float64): -inf at alpha = 0, +inf at sigma = 0."""
    c = schedule(torch.as_tensor(t, dtype=torch.float64))
    return torch.log(c.alpha) - torch.log(c.sigma)


def log_snr_at(schedule: Schedule, t: float) -> float:
    """:func:`log_snr` of one time, as a Python float."""
    return float(log_snr(schedule, t))


def t_of_log_snr(
    schedule: Schedule, lam: Tensor, t_lo: float | None = None, t_hi: float | None = None
) -> Tensor:
    r"""The time t in [t_lo, t_hi] with lambda(t) = ``lam``, by bisection (float64).

    lambda is increasing, so 64 halvings of [t_lo, t_hi] (default: the
    schedule's sampling interval) pin t down to the float64 resolution.

    Args:
        schedule: the path's schedule.
        lam: target log-SNRs, any shape.
        t_lo, t_hi: the bracket; default ``schedule.t_start`` and ``schedule.t_end``.

    Returns:
        float64 tensor shaped like ``lam``.

    Raises:
        ValueError: if a target lies outside [lambda(t_lo), lambda(t_hi)] or is NaN.
    """
    t_lo = schedule.t_start if t_lo is None else t_lo
    t_hi = schedule.t_end if t_hi is None else t_hi
    lam = torch.as_tensor(lam, dtype=torch.float64)
    lam_lo, lam_hi = log_snr_at(schedule, t_lo), log_snr_at(schedule, t_hi)
    # A relative slack of 1e-12 absorbs the roundoff of lambda -> sigma~ -> lambda round trips.
    slack = 1e-12 * max([1.0, *(abs(v) for v in (lam_lo, lam_hi) if math.isfinite(v))])
    if torch.isnan(lam).any() or (lam < lam_lo - slack).any() or (lam > lam_hi + slack).any():
        raise ValueError(
            f"log-SNR targets must lie in [{lam_lo}, {lam_hi}] (t in [{t_lo}, {t_hi}]), "
            f"got {lam.min().item()} .. {lam.max().item()}"
        )
    lo = torch.full_like(lam, t_lo)
    hi = torch.full_like(lam, t_hi)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = log_snr(schedule, mid) < lam
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def t_of_sigma_edm(schedule: Schedule, sigma_edm: Tensor | float) -> Tensor:
    """The time whose sigma / alpha equals ``sigma_edm`` (> 0): lambda = -log sigma_edm."""
    return t_of_log_snr(schedule, -torch.log(torch.as_tensor(sigma_edm, dtype=torch.float64)))
