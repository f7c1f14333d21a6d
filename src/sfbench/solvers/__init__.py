"""Sampling solvers with one signature, time grids, NFE counting and per-sample noise.

Every solver is ``solver(model, x, grid, noise, *, callback=None, **options) -> Tensor``:
it integrates from ``grid[0]`` (noise) to ``grid[-1]`` (data) and returns the
final state. :data:`SOLVERS` maps user-facing names to :class:`SolverSpec`.
"""

from sfbench.solvers.ddim import ddim, ddpm_ancestral
from sfbench.solvers.grids import check_grid, uniform_grid
from sfbench.solvers.nfe import CountingModel
from sfbench.solvers.noise import NoiseSource
from sfbench.solvers.ode import dopri5, euler, heun, rk4
from sfbench.solvers.registry import SOLVERS, SolverSpec, get_solver
from sfbench.solvers.sde import euler_maruyama

__all__ = [
    "SOLVERS",
    "CountingModel",
    "NoiseSource",
    "SolverSpec",
    "check_grid",
    "ddim",
    "ddpm_ancestral",
    "dopri5",
    "euler",
    "euler_maruyama",
    "get_solver",
    "heun",
    "rk4",
    "uniform_grid",
]
