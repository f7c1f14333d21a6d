"""Names of a sweep's cells: one key per (solver, grid, steps or tolerance).

The same key labels a cell in the sweep's record, the report's tables and the
samples file (where ``/`` becomes ``__``, which ``.npz`` member names allow).
"""

from __future__ import annotations


def cell_key(solver: str, steps: int | None, tol: float | None, grid: str = "uniform") -> str:
    """``euler/steps8``, ``euler/edm/steps8`` (grid other than uniform), ``dopri5/tol1e-05``."""
    if tol is not None:
        return f"{solver}/tol{tol:g}"
    return f"{solver}/steps{steps}" if grid == "uniform" else f"{solver}/{grid}/steps{steps}"


def npz_key(key: str) -> str:
    """The member name of the cell ``key`` in a samples file."""
    return key.replace("/", "__")
