"""The one model interface every solver and metric uses.

A *path model* has a ``schedule`` and ``predict(x, t) -> Prediction``: the
pair (x0, eps) at (x_t, t), from which velocity and score follow. A trained
network (:class:`NetworkModel`) and the closed-form oracle
(:class:`sfbench.eval.oracle.GaussianMixtureOracle`) both satisfy it, so
anything that samples or evaluates a checkpoint works on the oracle too.

A path model also *declares* what it can do, so that samplers and metrics
read it instead of probing for attributes of one implementation:

- ``sample_shape``: the shape of one sample as the model sees it ((2,) for
  2-D data, (C, H, W) for a U-Net on images). Samplers work on flat vectors
  of :func:`sample_dim` = prod(sample_shape) values (networks reshape).
- ``one_step``: only one Euler step from t_start is valid (a distilled map,
  trained at t_start only): no other sampler, no flow, no likelihood.
- ``has_score``: the (x0, eps) it predicts give the score of p_t. False for
  models trained on coupled (noise, data) pairs (reflow, distill): the
  conversion assumes noise independent of the data, so stochastic samplers,
  which need the score, sample another distribution from them.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor, nn

from sfbench.methods import Method
from sfbench.paths import Prediction, Schedule, to_x0_eps
from sfbench.paths.parameterization import batch_coef


class PathModel(Protocol):
    schedule: Schedule
    sample_shape: tuple[int, ...]
    one_step: bool
    has_score: bool

    def predict(self, x: Tensor, t: Tensor) -> Prediction: ...


def sample_dim(model: PathModel) -> int:
    """Number of values of one flat sample of ``model`` (what samplers draw)."""
    return math.prod(model.sample_shape)


def model_label(model: PathModel) -> str:
    """What error messages call ``model``: its method's name, else its class name."""
    return model.method.name if isinstance(model, NetworkModel) else type(model).__name__


def as_time(t: Tensor | float, x: Tensor) -> Tensor:
    """t as a [batch] tensor in x's dtype and device (solvers pass scalars)."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.dim() == 0 else t


class NetworkModel(nn.Module):
    """A network wrapped with its method's parameterization.

    ``forward`` returns the prediction in the method's target space (what the
    loss regresses); ``predict`` converts it to the shared (x0, eps) pair.
    Its capabilities follow from the network (``sample_shape``) and the
    method (``one_step``; ``has_score`` unless trained on coupled pairs).
    """

    def __init__(self, net: nn.Module, method: Method, schedule: Schedule):
        super().__init__()
        self.net, self.method, self.schedule = net, method, schedule
        self.sample_shape: tuple[int, ...] = tuple(net.sample_shape)
        self.one_step: bool = method.one_step
        self.has_score: bool = not method.needs_pairs

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
