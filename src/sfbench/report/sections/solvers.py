"""The solver table: what each registered solver steps in, its order, its evaluations per
step and its native setting (``sfbench.solvers.registry.solver_table``), written as
``tables/solvers.csv``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sfbench.report.render import Heading, Paragraph, Table
from sfbench.report.results import Results
from sfbench.report.sections.common import write_csv

#: The registry's row keys and their column labels in the report.
COLUMNS = {"solver": "solver", "kind": "kind", "variable": "steps in", "order": "order",
           "nfe_per_step": "NFE per step", "native": "native setting",
           "description": "description"}


def solver_frame(res: Results) -> pd.DataFrame:
    """Every registered solver (registry order) and whether these results sampled with it."""
    from sfbench.solvers import registry  # read at call time: the registry is the source

    frame = pd.DataFrame(registry.solver_table(), columns=list(COLUMNS))
    swept = set(res.cells["solver"]) if len(res.cells) else set()
    return frame.assign(swept=frame["solver"].isin(swept))


def solver_blocks(res: Results, tdir: Path) -> tuple[list, list[Path]]:
    frame = solver_frame(res)
    written = [write_csv(frame, tdir / "solvers.csv")]
    view = frame.rename(columns={**COLUMNS, "swept": "in this report"})
    view["in this report"] = ["yes" if s else "no" for s in frame["swept"]]
    blocks = [
        Heading("Solvers"),
        Paragraph(
            "What each solver steps in, its order of convergence (SDE solvers: weak order), "
            "its network evaluations per step and its native setting (the grid and options "
            "its authors use; best-by-solver tables show each solver's best cell on the "
            "common grid and in its native setting). Names: sfbench's `euler` and `heun` step "
            "in t on the velocity of the probability-flow ODE; what diffusers and k-diffusion "
            "call Euler and Heun (`EulerDiscreteScheduler`, `HeunDiscreteScheduler`, "
            "`sample_euler`, `sample_heun`) step in sigma on the denoiser: those are "
            "sfbench's `ddim` (Euler in sigma/alpha; DDIM at eta = 0) and `edm_heun` (Karras "
            "et al.'s Heun, on the edm grid)."
        ),
        Table(view, caption="the registered solvers (sfbench.solvers.registry)"),
    ]
    return blocks, written
