r"""Path models around networks sfbench did not train.

Each wrapper turns its network's output into the (x0, eps) pair of
:class:`sfbench.paths.Prediction`, at sfbench's time (t = 0 noise, t = 1
data), so every solver, the NLL and the metrics apply unchanged. Both declare
``one_step = False`` and ``has_score = True``: an external network is taken
to be a model of its path's marginals (noise independent of the data); a
reflow or distilled network is not, and has no way to say so here.

- :class:`DiscreteTimeModel`: a diffusers-style network of a discrete DDPM
  schedule, called as ``net(x, j)`` at diffusers' timestep
  j = (1 - t) T - 1 (``alphas_cumprod[j]`` is Ho et al.'s alphabar at step
  k = j + 1, which sfbench puts at t = 1 - k / T). On sfbench's lattice grids j
  is a whole number; adaptive solvers query it between whole numbers, which a
  network with a sinusoidal timestep embedding accepts.
- :class:`ContinuousTimeModel`: a network ``net(x, t)`` of continuous time in
  either convention; ``noise_at_1`` is converted at this edge as t' = 1 - t,
  and a velocity d x / d t' is -d x / d t.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sfbench.errors import ExternalModelError
from sfbench.model import as_time
from sfbench.paths import DDPMSchedule, Prediction, Schedule, ScheduleOutput, to_x0_eps
from sfbench.paths.parameterization import batch_coef

#: diffusers' ``prediction_type`` -> how its output becomes (x0, eps).
DIFFUSERS_PREDICTIONS = ("epsilon", "sample", "v_prediction")


class _ExternalModel(nn.Module):
    one_step = False
    has_score = True

    def __init__(self, net: nn.Module, schedule: Schedule, sample_shape: tuple[int, ...]):
        super().__init__()
        self.net, self.schedule = net, schedule
        self.sample_shape: tuple[int, ...] = tuple(sample_shape)

    def _shaped(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.sample_shape)

    def _flat(self, out, x: Tensor) -> Tensor:
        """The network's output flat like x, refused unless shaped like one batch of samples
        (checked on every call, so the probe at load catches it and a later call cannot
        reinterpret a wrong shape that happens to hold as many values)."""
        expected = (x.shape[0], *self.sample_shape)
        if not torch.is_tensor(out):
            raise ExternalModelError(f"the network returned a {type(out).__name__}, not a tensor")
        if tuple(out.shape) != expected:
            raise ExternalModelError(f"the network's output has shape {list(out.shape)}; "
                                     f"expected {list(expected)} (batch x sample_shape)")
        return out.reshape(x.shape)


def _coefficients(schedule: Schedule, t64: Tensor, dtype: torch.dtype) -> ScheduleOutput:
    """The schedule at float64 times, cast to the working dtype (a float32 time would move
    alpha by up to T ulp of t)."""
    c = schedule(t64)
    return ScheduleOutput(*(v.to(dtype) for v in (c.alpha, c.sigma, c.d_alpha, c.d_sigma)))


def float64_time(t: Tensor | float, x: Tensor) -> tuple[Tensor, torch.dtype]:
    """t as a float64 [batch] tensor on x's device, and the dtype it came in (a Python
    float is float64: solvers pass their float64 grid's times)."""
    source = t.dtype if torch.is_tensor(t) else torch.float64
    t64 = torch.as_tensor(t, dtype=torch.float64, device=x.device)
    return (t64.expand(x.shape[0]) if t64.dim() == 0 else t64), source


def diffusers_timestep(schedule: DDPMSchedule, t: Tensor, source: torch.dtype) -> Tensor:
    """Diffusers' timestep j = (1 - t) T - 1 of sfbench times t (float64).

    A time within a few ulp of ``source`` (the dtype t came in) of a whole step is
    snapped to it: a lattice time that reached here in float32 is off by up to T
    ulp, and the network should be queried exactly at the integers it was trained on.
    """
    j = (1.0 - t) * schedule.num_steps - 1.0
    nearest = torch.round(j)
    tol = 8.0 * schedule.num_steps * torch.finfo(source).eps
    return torch.where((j - nearest).abs() <= tol, nearest, j)


class DiscreteTimeModel(_ExternalModel):
    """``net(x, j)`` of a DDPM schedule, predicting diffusers' ``prediction_type``.

    Args:
        net: called as ``net(x, j)`` with x of shape [batch, *sample_shape] and j a
            [batch] tensor in x's dtype; returns a tensor or an object with
            ``.sample`` (diffusers' ``UNet2DOutput``).
        schedule: the DDPMSchedule of the network's betas.
        prediction_type: ``epsilon``, ``sample`` (x0) or ``v_prediction``
            (v = alpha eps - sigma x0, Salimans & Ho 2022, sec. 4).
        sample_shape: one sample's shape (C, H, W).
        learned_variance: the network's output holds twice the channels (eps and
            the variance interpolation of Nichol & Dhariwal 2021); the first half is
            the prediction, the variance is not used (sfbench's samplers fix theirs).
    """

    def __init__(self, net: nn.Module, schedule: DDPMSchedule, prediction_type: str,
                 sample_shape: tuple[int, ...], learned_variance: bool = False):
        if prediction_type not in DIFFUSERS_PREDICTIONS:
            raise ValueError(f"unknown prediction_type {prediction_type!r}; valid: "
                             f"{', '.join(DIFFUSERS_PREDICTIONS)}")
        super().__init__(net, schedule, sample_shape)
        self.prediction_type, self.learned_variance = prediction_type, learned_variance

    def output(self, x: Tensor, t: Tensor | float) -> Tensor:
        """The network's prediction at sfbench times t, flat like x."""
        t64, source = float64_time(t, x)
        j = diffusers_timestep(self.schedule, t64, source).to(x.dtype)
        out = self.net(self._shaped(x), j)
        out = getattr(out, "sample", out)
        if self.learned_variance and torch.is_tensor(out):
            out = out[:, : self.sample_shape[0]]
        return self._flat(out, x)

    def predict(self, x: Tensor, t: Tensor | float) -> Prediction:
        c = _coefficients(self.schedule, float64_time(t, x)[0], x.dtype)
        out = self.output(x, t)
        if self.prediction_type == "v_prediction":
            # x_t = alpha x0 + sigma eps and v = alpha eps - sigma x0, alpha^2 + sigma^2 = 1.
            a, s = batch_coef(c.alpha, x), batch_coef(c.sigma, x)
            x0, eps = a * x - s * out, s * x + a * out
        else:
            target = "eps" if self.prediction_type == "epsilon" else "x0"
            x0, eps = to_x0_eps(target, out, x, c)
        return Prediction(x_t=x, x0=x0, eps=eps, coeffs=c)


class ContinuousTimeModel(_ExternalModel):
    """``net(x, t)`` (or ``net(t, x)``) of continuous time on any sfbench path.

    Args:
        net: returns a tensor of x's shape [batch, *sample_shape]; t is a [batch]
            tensor in x's dtype, in the network's own convention.
        schedule: the sfbench path (sfbench's time) the network was trained on.
        prediction: one of :data:`sfbench.paths.TARGETS`.
        time: ``data_at_1`` (sfbench's) or ``noise_at_1`` (t' = 1 - t).
        inputs: the call order, ("x", "t") or ("t", "x").
    """

    def __init__(self, net: nn.Module, schedule: Schedule, prediction: str,
                 sample_shape: tuple[int, ...], time: str = "data_at_1",
                 inputs: tuple[str, str] = ("x", "t")):
        super().__init__(net, schedule, sample_shape)
        self.prediction, self.time, self.inputs = prediction, time, tuple(inputs)

    def output(self, x: Tensor, t: Tensor) -> Tensor:
        """The network's prediction at sfbench times t ([batch]) for sfbench's time, flat."""
        own_t = 1.0 - t if self.time == "noise_at_1" else t
        args = (self._shaped(x), own_t.to(x.dtype))
        out = self._flat(self.net(*(args if self.inputs == ("x", "t") else args[::-1])), x)
        if self.time == "noise_at_1" and self.prediction == "velocity":
            out = -out  # dx/dt = -dx/dt' for t' = 1 - t
        return out

    def predict(self, x: Tensor, t: Tensor | float) -> Prediction:
        t = as_time(t, x)
        c = self.schedule(t)
        x0, eps = to_x0_eps(self.prediction, self.output(x, t), x, c)
        return Prediction(x_t=x, x0=x0, eps=eps, coeffs=c)
