r"""Time grids for fixed-step solvers, their registry, and the loop that walks one.

A grid is an increasing 1-D float64 tensor from ``schedule.t_start`` (noise)
to ``schedule.t_end`` (data), both exact. Grids are separate from solvers so
that a spacing is one function here and works with every solver unchanged:

- ``uniform``: uniform in t; on a discrete-time schedule (DDPM, T steps, step
  k at t = 1 - k / T) its points are whole steps (option ``lattice``, below);
- ``edm``: EDM's rho-spaced noise levels (Karras et al. 2022, eq. 5) in the
  rescaled noise level sigma~ = sigma / alpha, mapped back to t;
- ``logsnr``: uniform in lambda = log(alpha / sigma) (the grid DPM-Solver
  was designed for, Lu et al. 2022).

At an end where lambda is infinite (alpha = 0 at the noise end of the flow
paths, sigma~ = inf; sigma = 0 at the data end of rectified flow, sigma~ = 0)
no spacing in that variable reaches the end. There the grid still starts
(ends) at ``t_start`` (``t_end``) exactly, and the other points are spaced
from a finite value instead: by default the lambda of the time one uniform
step (t_end - t_start) / N away from that end, so that the end intervals
shrink like 1/N and the grids converge to the ODE solution as N grows. The
lambda range then grows like 2 log N on rectified flow, so a second-order
solver's error falls like (log N / N)^2 there (measured slope -1.6 at N = 128
on gmm_aniso), against exactly N^-2 on the VP path, whose lambda is finite.
A fixed value (EDM's sigma~ in [0.002, 80]) can be passed instead, but then
the end steps keep their size for every N and bound how close a solver gets:
DPM-Solver++(2M), first order on such a step, stalls near 3e-3 on gmm_aniso.

On a discrete-time schedule the uniform grid's points are whole steps
(:mod:`.lattice`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from sfbench.paths import Schedule
from sfbench.solvers.lattice import LATTICES, lattice_steps
from sfbench.solvers.logsnr import log_snr_at, t_of_log_snr
from sfbench.solvers.options import resolve_options

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
    n = _check_steps(steps)
    if not t_end > t_start:
        raise ValueError(f"need t_start < t_end, got t_start={t_start}, t_end={t_end}")
    grid = torch.linspace(t_start, t_end, n + 1, dtype=torch.float64)
    grid[-1] = t_end  # linspace can miss the endpoint by an ulp; t_end = 1 must stay exactly 1
    return grid


def _check_steps(steps: int) -> int:
    try:
        n = operator.index(steps)
    except TypeError:
        raise ValueError(f"steps must be a positive integer, got {steps!r}") from None
    if isinstance(steps, bool) or n < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return n


def uniform_t_grid(steps: int, schedule: Schedule, lattice: str = "trailing") -> Tensor:
    """:func:`uniform_grid` over the schedule's sampling interval [t_start, t_end].

    On a discrete-time schedule (``schedule.is_discrete``) the points are whole
    steps, spaced as ``lattice`` says (module doc); "none", and every continuous
    schedule, give the uniform t grid.

    Raises:
        ValueError: for an unknown ``lattice``, or a step count that would repeat
            a whole step (the message names the largest that does not).
    """
    if lattice not in LATTICES:
        raise ValueError(
            f"uniform grid option lattice must be one of {', '.join(map(repr, LATTICES))}, "
            f"got {lattice!r}"
        )
    if lattice == "none" or not schedule.is_discrete:
        return uniform_grid(steps, schedule.t_start, schedule.t_end)
    k = lattice_steps(_check_steps(steps), schedule.num_steps, lattice)
    grid = schedule.t_of_step(k)
    grid[0], grid[-1] = schedule.t_start, schedule.t_end  # exact ends, as every grid's
    check_grid(grid)
    return grid


def _grid_from_log_snr(schedule: Schedule, lam_interior: Tensor) -> Tensor:
    """t_start, the times of the interior log-SNRs, t_end."""
    ends = torch.tensor([schedule.t_start, schedule.t_end], dtype=torch.float64)
    grid = torch.cat([ends[:1], t_of_log_snr(schedule, lam_interior), ends[1:]])
    check_grid(grid)  # too many steps for the float64 resolution of t would show up here
    return grid


def _spaced(count: int, spacing: Callable[[Tensor], Tensor]) -> Tensor:
    """``spacing(u)`` at ``count`` fractions u = i / (count - 1) of the way; a single point
    is taken half way (only reached when both ends of a grid are replaced)."""
    if count == 1:
        return spacing(torch.tensor([0.5], dtype=torch.float64))
    return spacing(torch.linspace(0.0, 1.0, count, dtype=torch.float64))


def _log_snr_range(
    steps: int, schedule: Schedule, lam_lo: float | None, lam_hi: float | None
) -> tuple[float, float, bool, bool]:
    """The finite log-SNR range a grid spaces its points over, and which ends were replaced.

    lambda(t_start) = -inf is replaced by ``lam_lo``, lambda(t_end) = +inf by
    ``lam_hi``; None means the lambda one uniform step inside that end (module doc).

    Raises:
        ValueError: if the range is empty or not finite.
    """
    t0, t1 = schedule.t_start, schedule.t_end
    lam_a, lam_b = log_snr_at(schedule, t0), log_snr_at(schedule, t1)
    clip_a, clip_b = lam_a == -math.inf, lam_b == math.inf
    step = (t1 - t0) / steps
    a, b = lam_a, lam_b
    if clip_a:
        a = log_snr_at(schedule, t0 + step) if lam_lo is None else lam_lo
    if clip_b:
        b = log_snr_at(schedule, t1 - step) if lam_hi is None else lam_hi
    single = steps + 1 - clip_a - clip_b == 1  # one spaced point: a = b is fine
    if not (math.isfinite(a) and math.isfinite(b) and lam_a <= a and b <= lam_b) or not (
        a < b or (single and a == b)
    ):
        raise ValueError(
            f"the grid's log-SNR range [{a}, {b}] must be finite, non-empty and inside the "
            f"schedule's [{lam_a}, {lam_b}]"
        )
    return a, b, clip_a, clip_b


def _interior(values: Tensor, clip_a: bool, clip_b: bool) -> Tensor:
    # A replaced end is not the grid's end point, so it stays as an interior point.
    return values[(0 if clip_a else 1) : (len(values) if clip_b else len(values) - 1)]


def edm_grid(
    steps: int,
    schedule: Schedule,
    rho: float = 7.0,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
) -> Tensor:
    r"""EDM's time steps (Karras et al. 2022, eq. 5) in sigma~ = sigma / alpha, mapped to t.

    .. math:: \tilde\sigma_i = \left(\tilde\sigma_{max}^{1/\rho} + \tfrac{i}{M - 1}
              \left(\tilde\sigma_{min}^{1/\rho} - \tilde\sigma_{max}^{1/\rho}\right)
              \right)^{\rho}, \quad i = 0, \dots, M - 1,

    between sigma~ at ``t_start`` and at ``t_end`` (M = steps + 1 points);
    each t_i solves sigma_t / alpha_t = sigma~_i (bisection on the monotone
    log-SNR). rho = 1 is uniform in sigma~; larger rho packs steps near the data.

    Args:
        steps: number of steps (>= 1).
        schedule: the path's schedule.
        rho: the spacing exponent (> 0); EDM's default 7.
        sigma_max: replaces sigma~(t_start) where it is infinite (alpha = 0):
            t_0 = t_start and the remaining points are rho-spaced from
            ``sigma_max``; None: sigma~ one uniform step after t_start (module
            doc); EDM uses 80. Unused where sigma~(t_start) is finite.
        sigma_min: replaces sigma~(t_end) where it is 0 (sigma = 0) in the
            same way (EDM's own grid appends sigma = 0 to rho-spaced levels
            ending at 0.002 just so); None: one uniform step before t_end.

    Raises:
        ValueError: for steps < 1, rho <= 0, or replacement values that leave
            an empty range.
    """
    n = _check_steps(steps)
    if not rho > 0:
        raise ValueError(f"edm grid option rho must be positive, got {rho}")
    for name, value in (("sigma_max", sigma_max), ("sigma_min", sigma_min)):
        if value is not None and not value > 0:
            raise ValueError(f"edm grid option {name} must be None or positive, got {value}")
    if n == 1:  # one step has no interior point to space
        return uniform_t_grid(1, schedule)
    lo = None if sigma_max is None else -math.log(sigma_max)
    hi = None if sigma_min is None else -math.log(sigma_min)
    lam_a, lam_b, clip_a, clip_b = _log_snr_range(n, schedule, lo, hi)
    a, b = math.exp(-lam_a / rho), math.exp(-lam_b / rho)  # sigma~^(1/rho) at both ends
    sigmas = _spaced(n + 1 - clip_a - clip_b, lambda u: (a + u * (b - a)) ** rho)
    return _grid_from_log_snr(schedule, -torch.log(_interior(sigmas, clip_a, clip_b)))


def logsnr_grid(
    steps: int,
    schedule: Schedule,
    lambda_min: float | None = None,
    lambda_max: float | None = None,
) -> Tensor:
    r"""Times uniform in the log-SNR lambda = log(alpha / sigma), from t_start to t_end.

    :math:`\lambda_i = \lambda(t_{start}) + \tfrac{i}{N}(\lambda(t_{end}) -
    \lambda(t_{start}))`, each t_i solving lambda(t_i) = lambda_i by bisection.

    Args:
        steps: number of steps N (>= 1).
        schedule: the path's schedule.
        lambda_min: replaces lambda(t_start) = -inf (alpha = 0): t_0 = t_start
            and the remaining points are uniform from ``lambda_min``; None:
            the lambda one uniform step after t_start (module doc).
        lambda_max: replaces lambda(t_end) = +inf (sigma = 0) in the same
            way; None: one uniform step before t_end.

    Raises:
        ValueError: for steps < 1 or replacement values that leave an empty range.
    """
    n = _check_steps(steps)
    if n == 1:  # one step has no interior point to space
        return uniform_t_grid(1, schedule)
    a, b, clip_a, clip_b = _log_snr_range(n, schedule, lambda_min, lambda_max)
    lams = _spaced(n + 1 - clip_a - clip_b, lambda u: a + u * (b - a))
    return _grid_from_log_snr(schedule, _interior(lams, clip_a, clip_b))


@dataclass(frozen=True)
class GridSpec:
    """A registered time grid: ``fn(steps, schedule, **options) -> Tensor``.

    Attributes:
        name: the user-facing name (the key in :data:`GRIDS`).
        fn: the grid function.
        defaults: every option it takes, with its default value.
        description: one line for listings and reports.
    """

    name: str
    fn: Callable[..., Tensor]
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``options``; unknown options raise ValueError."""
        return resolve_options("grid", self.name, self.defaults, options)

    def __call__(self, steps: int, schedule: Schedule, **options: Any) -> Tensor:
        return self.fn(steps, schedule, **self.resolve_options(options))


GRIDS: dict[str, GridSpec] = {
    g.name: g
    for g in (
        GridSpec(
            "uniform", uniform_t_grid, {"lattice": "trailing"},
            description="uniform in t (whole steps on discrete-time schedules)",
        ),
        GridSpec(
            "edm", edm_grid, {"rho": 7.0, "sigma_max": None, "sigma_min": None},
            description="EDM rho-spaced sigma/alpha (Karras et al. 2022)",
        ),
        GridSpec(
            "logsnr", logsnr_grid,
            {"lambda_min": None, "lambda_max": None},
            description="uniform in log-SNR lambda = log(alpha / sigma)",
        ),
    )
}


def get_grid(name: str) -> GridSpec:
    """The grid called ``name``; the error lists the valid names."""
    try:
        return GRIDS[name]
    except KeyError:
        valid = ", ".join(sorted(GRIDS))
        raise ValueError(f"unknown grid {name!r}; valid grids: {valid}") from None


def check_grid(grid: Tensor) -> None:
    """Raise ValueError unless ``grid`` is a strictly increasing 1-D tensor of >= 2 times."""
    if not isinstance(grid, Tensor) or grid.dim() != 1 or grid.numel() < 2:
        raise ValueError("grid must be a 1-D tensor of at least two times")
    bad = torch.nonzero(grid[1:] <= grid[:-1])
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"grid must be strictly increasing, got t[{i}] = {grid[i].item()!r} and "
            f"t[{i + 1}] = {grid[i + 1].item()!r} (of {grid.numel()} times)"
        )


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
