"""A stand-in for ``sfbench.solvers.registry.solver_table`` (contract A') until it exists.

The report renders the registry's solver table; helper H1 writes the real
function in parallel. :func:`install` adds this stand-in -- rows of the
contract's keys and values -- only where the registry has none, so once the
real one is merged it is the one every test uses (and this file can go).
"""

from __future__ import annotations

#: solver: (variable, order, NFE per step, native setting), as contract A lists them.
CONTRACT = {
    "euler": ("t", 1, "1", "uniform grid"),
    "heun": ("t", 2, "2", "uniform grid"),
    "midpoint": ("t", 2, "2", "uniform grid"),
    "rk4": ("t", 4, "4", "uniform grid"),
    "dopri5": ("t", 5, "adaptive", "endpoints grid"),
    "euler_maruyama": ("t", 1, "1", "uniform grid"),
    "ddim": ("sigma/alpha", 1, "1", "uniform grid"),
    "ddpm_ancestral": ("sigma/alpha", 1, "1", "uniform grid"),
    "pc": ("t", 1, "1 + corrector_steps", "uniform grid"),
    "dpm_solver_pp_2m": ("log-SNR", 2, "1", "logsnr grid"),
    "edm_heun": ("sigma/alpha", 2, "2 (1 on a last step onto sigma = 0)", "edm grid, rho = 7"),
}


def solver_table() -> list[dict]:
    from sfbench.solvers.registry import SOLVERS

    rows = []
    for name, spec in SOLVERS.items():
        variable, order, nfe, native = CONTRACT.get(name, ("t", None, "1", "uniform grid"))
        rows.append({"solver": name, "kind": spec.kind, "variable": variable, "order": order,
                     "nfe_per_step": nfe, "native": native, "description": spec.description})
    return rows


def install() -> None:
    """Give the registry this stand-in if it has no ``solver_table`` of its own."""
    from sfbench.solvers import registry

    if not hasattr(registry, "solver_table"):
        registry.solver_table = solver_table
