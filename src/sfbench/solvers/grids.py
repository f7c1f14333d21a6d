r"""Time grids for fixed-step solvers, and the loop that walks one.

A grid is an increasing 1-D float64 tensor from ``schedule.t_start`` (noise)
to ``schedule.t_end`` (data). Grids are separate from solvers so that a new
spacing (EDM's rho schedule, uniform in log-SNR) is one function here and
works with every solver unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch
from torch import Tensor

Callback = Callable[[int, float, Tensor], None]
Step = Callable[[int, float, float, Tensor], Tensor]


def uniform_grid(steps: int, t_start: float, t_end: float) -> Tensor:
    r"""``steps + 1`` equally spaced times, :math:`t_i = t_{start} + (t_{end} - t_{start}) i / N`.

    Args:
        steps: number of steps N >= 1.
        t_start: first time (the noise end).
        t_end: last time (the data end), greater than ``t_start``.

    Returns:
        float64 tensor of shape [steps + 1]; the endpoints are exact.

    Raises:
        ValueError: if ``steps`` is not a positive integer or ``t_end <= t_start``.
    """
    try:
        n = operator.index(steps)
    except TypeError:
        raise ValueError(f"steps must be a positive integer, got {steps!r}") from None
    if isinstance(steps, bool) or n < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not t_end > t_start:
        raise ValueError(f"need t_start < t_end, got t_start={t_start}, t_end={t_end}")
    grid = torch.linspace(t_start, t_end, n + 1, dtype=torch.float64)
    grid[-1] = t_end  # linspace can miss the endpoint by an ulp; t_end = 1 must stay exactly 1
    return grid


def check_grid(grid: Tensor) -> None:
    """Raise ValueError unless ``grid`` is a strictly increasing 1-D tensor of >= 2 times."""
    if not isinstance(grid, Tensor) or grid.dim() != 1 or grid.numel() < 2:
        raise ValueError("grid must be a 1-D tensor of at least two times")
    if not bool(torch.all(grid[1:] > grid[:-1])):
        raise ValueError(f"grid must be strictly increasing, got {grid.tolist()}")


def walk_grid(grid: Tensor, x: Tensor, step: Step, callback: Callback | None = None) -> Tensor:
    """Apply ``x <- step(i, t_i, t_{i+1}, x)`` along the grid.

    The one loop every fixed-grid solver shares, so that each solver is only
    its update rule and ``callback(i, t_i, x)`` sees the state at every grid
    point, the start included.
    """
    check_grid(grid)
    times = grid.tolist()
    if callback is not None:
        callback(0, times[0], x)
    for i in range(len(times) - 1):
        x = step(i, times[i], times[i + 1], x)
        if callback is not None:
            callback(i + 1, times[i + 1], x)
    return x
