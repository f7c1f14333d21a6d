r"""Conversions between the four things a network can predict on a Gaussian path.

For x_t = alpha x0 + sigma eps the four predictions are tied together by

    velocity = d_alpha x0 + d_sigma eps          (derivative of the path)
    score    = -eps / sigma                       (Tweedie's formula)
    x_t      = alpha x0 + sigma eps               (the path itself)

(reference 003, Proposition 1; Tweedie in reference 004). Given x_t, any one
prediction fixes the pair (x0, eps), and the pair fixes the other three.
Every conversion goes through that pair, so there is one formula per target
instead of twelve pairwise ones.

Where a formula divides by a quantity that vanishes (sigma = 0 at the data
end of a flow path, alpha = 0 at its noise end) the result is the limit a
finite network output implies, not a NaN: see the ``_safe_div`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sfbench.paths.schedules import ScheduleOutput

TARGETS = ("x0", "eps", "score", "velocity")


def batch_coef(coef: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-sample coefficient (shape [B] or []) to broadcast over x."""
    return coef.reshape(coef.shape + (1,) * (x.dim() - coef.dim()))


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """num / den, with den = 0 replaced by a tiny number of its dtype.

    Only reached when a model is queried at an end of its path where the
    conversion is singular (sigma = 0 or alpha = 0); a large finite value
    there is the honest limit, a NaN would poison a whole sample batch.
    """
    tiny = torch.finfo(den.dtype).eps ** 2
    return num / torch.where(den == 0, torch.full_like(den, tiny), den)


@dataclass(frozen=True)
class Prediction:
    """A prediction on the path at (x_t, t), held as the pair (x0, eps)."""

    x_t: Tensor
    x0: Tensor
    eps: Tensor
    coeffs: ScheduleOutput

    @property
    def velocity(self) -> Tensor:
        c = self.coeffs
        return batch_coef(c.d_alpha, self.x0) * self.x0 + batch_coef(c.d_sigma, self.eps) * self.eps

    @property
    def score(self) -> Tensor:
        return -_safe_div(self.eps, batch_coef(self.coeffs.sigma, self.eps))

    def get(self, target: str) -> Tensor:
        """The prediction of ``target`` (one of :data:`TARGETS`)."""
        if target not in TARGETS:
            raise ValueError(f"unknown prediction target {target!r}; valid: {', '.join(TARGETS)}")
        return getattr(self, target)


def to_x0_eps(target: str, output: Tensor, x_t: Tensor, c: ScheduleOutput) -> tuple[Tensor, Tensor]:
    r"""Turn a prediction of ``target`` at x_t into the pair (x0, eps).

    - x0:  eps = (x_t - alpha x0) / sigma
    - eps: x0 = (x_t - sigma eps) / alpha
    - score: eps = -sigma score, then as eps
    - velocity: solve [alpha sigma; d_alpha d_sigma] (x0, eps) = (x_t, v);
      the determinant alpha d_sigma - sigma d_alpha is nonzero on every path
      whose signal-to-noise ratio alpha / sigma increases strictly in t.
    """
    alpha, sigma = batch_coef(c.alpha, x_t), batch_coef(c.sigma, x_t)
    if target == "x0":
        return output, _safe_div(x_t - alpha * output, sigma)
    if target == "eps":
        return _safe_div(x_t - sigma * output, alpha), output
    if target == "score":
        eps = -sigma * output
        return _safe_div(x_t - sigma * eps, alpha), eps
    if target == "velocity":
        d_alpha, d_sigma = batch_coef(c.d_alpha, x_t), batch_coef(c.d_sigma, x_t)
        det = alpha * d_sigma - sigma * d_alpha
        x0 = (d_sigma * x_t - sigma * output) / det
        eps = (alpha * output - d_alpha * x_t) / det
        return x0, eps
    raise ValueError(f"unknown prediction target {target!r}; valid: {', '.join(TARGETS)}")


def convert(source: str, output: Tensor, x_t: Tensor, c: ScheduleOutput, target: str) -> Tensor:
    """Convert a prediction of ``source`` into a prediction of ``target``."""
    x0, eps = to_x0_eps(source, output, x_t, c)
    return Prediction(x_t=x_t, x0=x0, eps=eps, coeffs=c).get(target)


def conditional_target(target: str, x_data: Tensor, eps: Tensor, c: ScheduleOutput) -> Tensor:
    """The regression target of ``target`` for one (x_data, eps) pair: the
    conditional x0, eps, score or velocity whose expectation given x_t is the
    marginal one (reference 003, Theorem 18)."""
    x_t = batch_coef(c.alpha, x_data) * x_data + batch_coef(c.sigma, eps) * eps
    return Prediction(x_t=x_t, x0=x_data, eps=eps, coeffs=c).get(target)
