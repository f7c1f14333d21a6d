"""Sampling solvers with one signature, time grids, NFE counting and per-sample noise.

Every solver is ``solver(model, x, grid, noise, *, callback=None, **options) -> Tensor``:
it integrates from ``grid[0]`` (noise) to ``grid[-1]`` (data) and returns the
final state. :data:`SOLVERS` maps user-facing names to :class:`SolverSpec`,
:data:`GRIDS` names the time grids.
"""

from sfbench.solvers.ddim import ddim, ddpm_ancestral
from sfbench.solvers.dpm_solver import dpm_solver_pp_2m
from sfbench.solvers.edm import edm_heun
from sfbench.solvers.grids import (
    GRIDS,
    GridSpec,
    check_grid,
    edm_grid,
    get_grid,
    logsnr_grid,
    uniform_grid,
    uniform_t_grid,
)
from sfbench.solvers.logsnr import log_snr, t_of_log_snr, t_of_sigma_edm
from sfbench.solvers.nfe import CountingModel
from sfbench.solvers.noise import NoiseSource
from sfbench.solvers.ode import dopri5, euler, heun, midpoint, rk4
from sfbench.solvers.pc import pc
from sfbench.solvers.registry import (
    SOLVERS,
    VARIABLES,
    NativeSetting,
    SolverSpec,
    get_solver,
    solver_table,
)
from sfbench.solvers.sde import euler_maruyama

__all__ = [
    "GRIDS",
    "SOLVERS",
    "VARIABLES",
    "CountingModel",
    "GridSpec",
    "NativeSetting",
    "NoiseSource",
    "SolverSpec",
    "check_grid",
    "ddim",
    "ddpm_ancestral",
    "dopri5",
    "dpm_solver_pp_2m",
    "edm_grid",
    "edm_heun",
    "euler",
    "euler_maruyama",
    "get_grid",
    "get_solver",
    "heun",
    "log_snr",
    "logsnr_grid",
    "midpoint",
    "pc",
    "rk4",
    "solver_table",
    "t_of_log_snr",
    "t_of_sigma_edm",
    "uniform_grid",
    "uniform_t_grid",
]
