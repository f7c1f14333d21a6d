"""A sweep's cells: one :class:`Cell` per (solver, grid, steps or tolerance) and its key.

The same key labels a cell in the sweep's record, the report's tables and the
samples file (where ``/`` becomes ``__``, which ``.npz`` member names allow).

A solver's *native* setting (``SolverSpec.native``: the grid, grid options and
options its authors recommend, e.g. EDM Heun on the rho = 7 grid) is a second
column beside the common grid every solver shares, so a sampler is seen both at
its best and on equal terms. :func:`native_cells` builds that column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def cell_key(solver: str, steps: int | None, tol: float | None, grid: str = "uniform") -> str:
    """``euler/steps8``, ``euler/edm/steps8`` (grid other than uniform), ``dopri5/tol1e-05``."""
    if tol is not None:
        return f"{solver}/tol{tol:g}"
    return f"{solver}/steps{steps}" if grid == "uniform" else f"{solver}/{grid}/steps{steps}"


def npz_key(key: str) -> str:
    """The member name of the cell ``key`` in a samples file."""
    return key.replace("/", "__")


def _bracket(name: str, options: dict) -> str:
    """``name[k=v,...]`` (sorted), or ``name`` without options."""
    if not options:
        return name
    return name + "[" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in sorted(options.items())) + "]"


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: a solver at a step count on a grid, or at a tolerance.

    ``options`` / ``grid_options`` are the options given to the solver / grid
    (not their resolved defaults: the record holds those); ``native`` says the
    cell's grid, grid options and options are the solver's native setting.
    """

    solver: str
    steps: int | None
    tolerance: float | None
    grid: str
    options: dict = field(default_factory=dict)  # the configured options of this solver
    grid_options: dict = field(default_factory=dict)
    native: bool = False

    @property
    def key(self) -> str:
        """:func:`cell_key`; a solver or grid with options is named with them
        (``ddim[eta=0.5]/steps8``, ``edm_heun/edm[rho=5]/steps8``), so two settings
        never share a key."""
        return cell_key(_bracket(self.solver, self.options), self.steps, self.tolerance,
                        _bracket(self.grid, self.grid_options))

    def generate_options(self) -> dict:
        """Keyword arguments of :func:`sfbench.sampling.generate` for this cell."""
        if self.tolerance is not None:  # adaptive: only the endpoints, no grid
            return {"rtol": self.tolerance, "atol": self.tolerance, **self.options}
        out: dict[str, Any] = {"grid": self.grid}
        if self.grid_options:
            out["grid_options"] = dict(self.grid_options)
        return {**out, **self.options}


def _is_native(cell: Cell) -> bool:
    """Whether ``cell`` samples with its solver's native grid, grid options and options
    (compared resolved, so an option given at its default value is the default)."""
    from sfbench.solvers import get_grid
    from sfbench.solvers.registry import get_solver

    spec = get_solver(cell.solver)
    native = spec.native
    tol = {} if cell.tolerance is None else {"rtol": cell.tolerance, "atol": cell.tolerance}
    if spec.resolve_options({**cell.options, **tol}) != spec.resolve_options(
            {**native.options, **tol}):
        return False
    if cell.tolerance is not None:  # adaptive: the grid is the endpoints whatever is asked
        return True
    return (cell.grid == native.grid and get_grid(cell.grid).resolve_options(cell.grid_options)
            == get_grid(native.grid).resolve_options(native.grid_options))


def native_cells(cells: list[Cell], steps: list[int]) -> list[Cell]:
    """``cells`` with the native column: a cell whose setting is its solver's native one is
    marked ``native``; each fixed-step solver none of whose cells is native gets a cell on
    its native grid and options at every step count, after its common cells.

    Grid options equal to the grid's defaults are left out of a native cell (its key is
    ``edm_heun/edm/steps8``, the same as a common cell on that grid would have).
    """
    from dataclasses import replace

    from sfbench.solvers import get_grid
    from sfbench.solvers.registry import get_solver

    marked = [replace(c, native=_is_native(c)) for c in cells]
    out: list[Cell] = []
    for solver in dict.fromkeys(c.solver for c in marked):
        own = [c for c in marked if c.solver == solver]
        out += own
        spec = get_solver(solver)
        if spec.adaptive or any(c.native for c in own):
            continue
        native = spec.native
        defaults = get_grid(native.grid).defaults
        grid_options = {k: v for k, v in native.grid_options.items() if defaults.get(k) != v}
        out += [Cell(solver, n, None, native.grid, dict(native.options), grid_options, True)
                for n in steps]
    return out
