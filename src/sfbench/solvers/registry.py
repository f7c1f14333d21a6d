"""The solver registry: user-facing name -> :class:`SolverSpec`.

Adding a solver is one function with the common signature
``solver(model, x, grid, noise, *, callback=None, **options) -> Tensor``
and one entry in :data:`SOLVERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from sfbench.solvers.ddim import ddim, ddpm_ancestral
from sfbench.solvers.dpm_solver import dpm_solver_pp_2m
from sfbench.solvers.edm import edm_heun
from sfbench.solvers.ode import dopri5, euler, heun, midpoint, rk4
from sfbench.solvers.options import resolve_options
from sfbench.solvers.pc import pc
from sfbench.solvers.sde import euler_maruyama


@dataclass(frozen=True)
class SolverSpec:
    """A registered solver.

    Attributes:
        name: the user-facing name (the key in :data:`SOLVERS`).
        fn: the solver function.
        kind: "ode" (deterministic) or "sde" (draws step noise).
        defaults: every option the solver takes, with its default value.
        description: one line for listings and reports.
        adaptive: True if the solver picks its own steps (uses only the
            grid's endpoints; ``steps`` does not apply).
    """

    name: str
    fn: Callable
    kind: Literal["ode", "sde"]
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""
    adaptive: bool = False

    def __post_init__(self):
        # Read-only, so a caller cannot change the defaults every later run sees.
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``options``.

        Raises:
            ValueError: naming any unknown option and the valid ones.
        """
        return resolve_options("solver", self.name, self.defaults, options)


SOLVERS: dict[str, SolverSpec] = {
    s.name: s
    for s in (
        SolverSpec("euler", euler, "ode", description="explicit Euler on the probability-flow ODE"),
        SolverSpec("heun", heun, "ode", description="Heun (2nd order, 2 NFE per step)"),
        SolverSpec(
            "midpoint", midpoint, "ode", description="explicit midpoint (2nd order, 2 NFE/step)"
        ),
        SolverSpec("rk4", rk4, "ode", description="classical Runge-Kutta (4th order, 4 NFE/step)"),
        SolverSpec(
            "dopri5", dopri5, "ode", {"rtol": 1e-5, "atol": 1e-5},
            description="adaptive Dormand-Prince 5(4) via torchdiffeq", adaptive=True,
        ),
        SolverSpec(
            "euler_maruyama", euler_maruyama, "sde",
            description="Euler-Maruyama on the reverse SDE, gamma^2 = min(g^2, sigma^2 / dt)",
        ),
        SolverSpec(
            "ddim", ddim, "ode", {"eta": 0.0},
            description="DDIM posterior steps (deterministic at the default eta = 0)",
        ),
        SolverSpec(
            "ddpm_ancestral", ddpm_ancestral, "sde",
            description="ancestral sampling from the forward posterior (DDIM with eta = 1)",
        ),
        SolverSpec(
            "pc", pc, "sde", {"predictor": "euler_maruyama", "snr": 0.16, "corrector_steps": 1},
            description="predictor-corrector: reverse-SDE step + Langevin corrector (Song 2021)",
        ),
        SolverSpec(
            "dpm_solver_pp_2m", dpm_solver_pp_2m, "ode", {"lower_order_final": None},
            description="DPM-Solver++(2M), multistep 2nd order in log-SNR (Lu et al. 2022)",
        ),
        SolverSpec(
            "edm_heun", edm_heun, "ode",
            {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": None, "s_noise": 1.0},
            description="EDM Heun in sigma/alpha, optional churn (deterministic at s_churn = 0)",
        ),
    )
}


def get_solver(name: str) -> SolverSpec:
    """The solver called ``name``; the error lists the valid names."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(
            f"unknown solver {name!r}; valid solvers: {', '.join(sorted(SOLVERS))}"
        ) from None
