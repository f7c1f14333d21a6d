r"""Probability-flow ODE solvers: dx/dt = v(x, t), the path's velocity field.

Every model yields the velocity through its (x0, eps) prediction,
:math:`v = \dot\alpha_t x_0 + \dot\sigma_t \epsilon` (see
:mod:`sfbench.paths.parameterization`), so these solvers sample any method.
Fixed-grid solvers make exactly (evaluations per step) x (steps) model calls:
Euler 1, Heun 2, midpoint 2, RK4 4. ``dopri5`` is adaptive and uses only the grid's
endpoints. ODE solvers are deterministic: the ``noise`` argument is accepted
for the common signature and not used.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchdiffeq import odeint

from sfbench.model import PathModel
from sfbench.solvers.grids import Callback, check_grid, walk_grid
from sfbench.solvers.noise import NoiseSource


def _velocity(model: PathModel, x: Tensor, t: float | Tensor) -> Tensor:
    return model.predict(x, t).velocity


def euler(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    r"""Explicit Euler, first order: :math:`x_{i+1} = x_i + h_i v(x_i, t_i)`.

    One model evaluation per step.
    """

    def step(i: int, t: float, s: float, x: Tensor) -> Tensor:
        return x + (s - t) * _velocity(model, x, t)

    return walk_grid(grid, x, step, callback)


def heun(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    r"""Heun's method (explicit trapezoidal rule), second order.

    .. math::
        k_1 = v(x_i, t_i), \quad k_2 = v(x_i + h k_1, t_{i+1}), \quad
        x_{i+1} = x_i + \tfrac{h}{2}(k_1 + k_2).

    Two model evaluations on every step, the last one included (EDM's
    variant skips the correction on the last step; this one does not, so
    its NFE is exactly 2N).
    """

    def step(i: int, t: float, s: float, x: Tensor) -> Tensor:
        return heun_step(model, x, t, s)

    return walk_grid(grid, x, step, callback)


def heun_step(model: PathModel, x: Tensor, t: float, s: float) -> Tensor:
    """One step of :func:`heun` from t to s (two model evaluations)."""
    h = s - t
    k1 = _velocity(model, x, t)
    k2 = _velocity(model, x + h * k1, s)
    return x + 0.5 * h * (k1 + k2)


def midpoint(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    r"""The explicit midpoint method (Runge 1895), second order.

    .. math::
        x_{i+1} = x_i + h\, v\!\left(x_i + \tfrac{h}{2} v(x_i, t_i),\ t_i + \tfrac{h}{2}\right).

    Two model evaluations per step. Unlike Heun it never evaluates the model
    at the step's end, so it does not query t_end itself.
    """

    def step(i: int, t: float, s: float, x: Tensor) -> Tensor:
        h = s - t
        half = x + 0.5 * h * _velocity(model, x, t)
        return x + h * _velocity(model, half, t + 0.5 * h)

    return walk_grid(grid, x, step, callback)


def rk4(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None,
) -> Tensor:
    r"""The classical fourth-order Runge-Kutta method.

    .. math::
        k_1 = v(x, t), \; k_2 = v(x + \tfrac{h}{2} k_1, t + \tfrac{h}{2}), \;
        k_3 = v(x + \tfrac{h}{2} k_2, t + \tfrac{h}{2}), \; k_4 = v(x + h k_3, t + h), \\
        x_{i+1} = x + \tfrac{h}{6}(k_1 + 2 k_2 + 2 k_3 + k_4).

    Four model evaluations per step.
    """

    def step(i: int, t: float, s: float, x: Tensor) -> Tensor:
        h = s - t
        mid = t + 0.5 * h
        k1 = _velocity(model, x, t)
        k2 = _velocity(model, x + 0.5 * h * k1, mid)
        k3 = _velocity(model, x + 0.5 * h * k2, mid)
        k4 = _velocity(model, x + h * k3, s)
        return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    return walk_grid(grid, x, step, callback)


def dopri5(
    model: PathModel, x: Tensor, grid: Tensor, noise: NoiseSource, *,
    callback: Callback | None = None, rtol: float = 1e-5, atol: float = 1e-5,
) -> Tensor:
    r"""Adaptive Dormand-Prince 5(4) from ``grid[0]`` to ``grid[-1]`` (torchdiffeq).

    The step size is chosen so that the local error estimate stays below
    ``atol + rtol * |x|`` (RMS over the batch); interior grid points are
    ignored. ``callback`` sees the state at index 0 and at index
    ``len(grid) - 1``. The NFE is whatever the controller needs.

    Args:
        rtol: relative tolerance (> 0).
        atol: absolute tolerance (> 0).
    """
    check_grid(grid)
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"dopri5 needs rtol > 0 and atol > 0, got rtol={rtol}, atol={atol}")
    if callback is not None:
        callback(0, float(grid[0]), x)
    t_start, t_end = float(grid[0]), float(grid[-1])

    def field(t: Tensor, y: Tensor) -> Tensor:
        # torchdiffeq probes t_start + h0 once to pick its first step, and h0 is
        # not bounded by the interval; outside it the schedule can be NaN (VP
        # beyond t = 1). The clamp only affects that probe: step_t below keeps
        # every real step inside.
        return _velocity(model, y, t.clamp(t_start, t_end))

    # Times stay float64 (torchdiffeq keeps time-like values in float64 even for a
    # float32 state). step_t makes the last step end exactly at t_end instead of
    # stepping past it and interpolating back, which would evaluate the model
    # beyond the data end.
    times = torch.tensor([t_start, t_end], dtype=torch.float64, device=x.device)
    path = odeint(
        field, x, times, rtol=rtol, atol=atol, method="dopri5", options={"step_t": times[1:]}
    )
    x = path[-1]
    if callback is not None:
        callback(len(grid) - 1, t_end, x)
    return x
