"""The one model interface every solver and metric uses.

A *path model* has a ``schedule`` and ``predict(x, t) -> Prediction``: the
pair (x0, eps) at (x_t, t), from which velocity and score follow. A trained
network (:class:`NetworkModel`) and the closed-form oracle
(:class:`sfbench.eval.oracle.GaussianMixtureOracle`) both satisfy it, so
anything that samples or evaluates a checkpoint works on the oracle too.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from sfbench.methods import Method
from sfbench.paths import Prediction, Schedule, to_x0_eps
from sfbench.paths.parameterization import batch_coef


class PathModel(Protocol):
    schedule: Schedule

    def predict(self, x: Tensor, t: Tensor) -> Prediction: ...


def as_time(t: Tensor | float, x: Tensor) -> Tensor:
    """t as a [batch] tensor in x's dtype and device (solvers pass scalars)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.dim() == 0 else t


class NetworkModel(nn.Module):
    """A network wrapped with its method's parameterization.

    ``forward`` returns the prediction in the method's target space (what the
    loss regresses); ``predict`` converts it to the shared (x0, eps) pair.
    """

    def __init__(self, net: nn.Module, method: Method, schedule: Schedule):
        super().__init__()
        self.net, self.method, self.schedule = net, method, schedule

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.net(x, t)
        if self.method.output_scaling == "inverse_sigma":
            out = out / batch_coef(self.schedule(t).sigma, out)
        return out

    def predict(self, x: Tensor, t: Tensor | float) -> Prediction:
        t = as_time(t, x)
        c = self.schedule(t)
        x0, eps = to_x0_eps(self.method.target, self(x, t), x, c)
        return Prediction(x_t=x, x0=x0, eps=eps, coeffs=c)
