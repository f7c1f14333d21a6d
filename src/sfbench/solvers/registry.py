"""The solver registry: user-facing name -> :class:`SolverSpec`.

Adding a solver is one function with the common signature
``solver(model, x, grid, noise, *, callback=None, **options) -> Tensor``
and one entry in :data:`SOLVERS`, or, from another package, one entry point
(:mod:`sfbench.plugins`, docs/EXTENDING.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from sfbench import plugins
from sfbench.solvers.ddim import ddim, ddpm_ancestral
from sfbench.solvers.dpm_solver import dpm_solver_pp_2m
from sfbench.solvers.edm import edm_heun
from sfbench.solvers.ode import dopri5, euler, heun, midpoint, rk4
from sfbench.solvers.options import resolve_options
from sfbench.solvers.pc import pc
from sfbench.solvers.sde import euler_maruyama

#: The variables a solver steps in (what its update is written in, and so what it is
#: exact or accurate for): time, EDM's rescaled noise level, the log-SNR.
VARIABLES = ("t", "sigma/alpha", "log-SNR")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class NativeSetting:
    """The grid and options a solver was designed for (its paper's own setting).

    The benchmark compares every solver on common grids; this is the setting a
    solver is also run on so that none is judged only off its design point.

    Attributes:
        grid: a name in :data:`sfbench.solvers.GRIDS`, or "endpoints" for an
            adaptive solver (which uses only the interval's ends).
        grid_options: the grid options the setting fixes (the others take
            the grid's defaults).
        options: the solver options the setting fixes (likewise).
    """

    grid: str = "uniform"
    grid_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        for name in ("grid_options", "options"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def describe(self) -> str:
        """E.g. "uniform grid", "edm grid, rho = 7", "endpoints"."""
        if self.grid == "endpoints":
            head = "endpoints"
        else:
            head = ", ".join([f"{self.grid} grid", *(
                f"{k} = {_number(v)}" for k, v in sorted(self.grid_options.items()))])
        extra = [f"{k} = {_number(v)}" for k, v in sorted(self.options.items())]
        return "; ".join([head, ", ".join(extra)]) if extra else head


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
        variable: the variable it steps in, one of :data:`VARIABLES`.
        order: its convergence order in the step size (SDE solvers: the weak
            order, of the law of the samples); None if it has none.
        nfe_per_step: model evaluations per step, in words ("2", "1 +
            corrector_steps", "adaptive").
        native: the grid and options it was designed for.
    """

    name: str
    fn: Callable
    kind: Literal["ode", "sde"]
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""
    adaptive: bool = False
    variable: str = "t"
    order: int | None = None
    nfe_per_step: str = "1"
    native: NativeSetting = field(default_factory=NativeSetting)

    def __post_init__(self):
        # Read-only, so a caller cannot change the defaults every later run sees.
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        if self.variable not in VARIABLES:
            raise ValueError(
                f"solver {self.name!r}: variable must be one of {', '.join(VARIABLES)}, "
                f"got {self.variable!r}"
            )

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults updated with ``options``.

        Raises:
            ValueError: naming any unknown option and the valid ones.
        """
        return resolve_options("solver", self.name, self.defaults, options)


_ENDPOINTS = NativeSetting("endpoints")
_SIGMA = "sigma/alpha"

_BUILTIN_SOLVERS: dict[str, SolverSpec] = {
    s.name: s
    for s in (
        SolverSpec("euler", euler, "ode", description="explicit Euler on the probability-flow ODE",
                   order=1, nfe_per_step="1"),
        SolverSpec("heun", heun, "ode", description="Heun (2nd order, 2 NFE per step)",
                   order=2, nfe_per_step="2"),
        SolverSpec(
            "midpoint", midpoint, "ode", description="explicit midpoint (2nd order, 2 NFE/step)",
            order=2, nfe_per_step="2",
        ),
        SolverSpec("rk4", rk4, "ode", description="classical Runge-Kutta (4th order, 4 NFE/step)",
                   order=4, nfe_per_step="4"),
        SolverSpec(
            "dopri5", dopri5, "ode", {"rtol": 1e-5, "atol": 1e-5},
            description="adaptive Dormand-Prince 5(4) via torchdiffeq", adaptive=True,
            order=5, nfe_per_step="adaptive", native=_ENDPOINTS,
        ),
        SolverSpec(
            "euler_maruyama", euler_maruyama, "sde",
            description="Euler-Maruyama on the reverse SDE, gamma^2 = min(g^2, sigma^2 / dt)",
            order=1, nfe_per_step="1",
        ),
        SolverSpec(
            "ddim", ddim, "ode", {"eta": 0.0},
            description="DDIM posterior steps (deterministic at the default eta = 0)",
            variable=_SIGMA, order=1, nfe_per_step="1",
        ),
        SolverSpec(
            "ddpm_ancestral", ddpm_ancestral, "sde",
            description="ancestral sampling from the forward posterior (DDIM with eta = 1)",
            variable=_SIGMA, order=1, nfe_per_step="1",
        ),
        SolverSpec(
            "pc", pc, "sde", {"predictor": "euler_maruyama", "snr": 0.16, "corrector_steps": 1},
            description="predictor-corrector: reverse-SDE step + Langevin corrector (Song 2021)",
            order=1, nfe_per_step="1 + corrector_steps",
        ),
        SolverSpec(
            "dpm_solver_pp_2m", dpm_solver_pp_2m, "ode", {"lower_order_final": None},
            description="DPM-Solver++(2M), multistep 2nd order in log-SNR (Lu et al. 2022)",
            variable="log-SNR", order=2, nfe_per_step="1", native=NativeSetting("logsnr"),
        ),
        SolverSpec(
            "edm_heun", edm_heun, "ode",
            {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": None, "s_noise": 1.0},
            description="EDM Heun in sigma/alpha, optional churn (deterministic at s_churn = 0)",
            variable=_SIGMA, order=2, nfe_per_step="2 (1 on a last step onto sigma = 0)",
            native=NativeSetting("edm", {"rho": 7.0}),
        ),
    )
}

#: The built-in solvers, then the ``sfbench.solvers`` plug-ins (:mod:`sfbench.plugins`),
#: loaded when the registry is first read.
SOLVERS: plugins.Registry[SolverSpec] = plugins.Registry(
    plugins.GROUPS["solvers"], _BUILTIN_SOLVERS, plugins.instance_of(SolverSpec)
)


def solver_table() -> list[dict[str, Any]]:
    """One row per registered solver, for listings and the report.

    Keys: solver, kind, variable, order, nfe_per_step, native (the native
    setting in words), description.
    """
    return [
        {
            "solver": s.name, "kind": s.kind, "variable": s.variable, "order": s.order,
            "nfe_per_step": s.nfe_per_step, "native": s.native.describe(),
            "description": s.description,
        }
        for s in SOLVERS.values()
    ]


def get_solver(name: str) -> SolverSpec:
    """The solver called ``name``; the error lists the valid names."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(
            f"unknown solver {name!r}; valid solvers: {', '.join(sorted(SOLVERS))}"
        ) from None
