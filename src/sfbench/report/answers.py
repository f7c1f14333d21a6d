"""The report's answers: per dataset and NFE budget, the best method x solver cell.

For a dataset and a budget b in :data:`BUDGETS`, the candidates are every
cell (a method's setting: solver, steps or tolerance, grid; common grid or
native setting) whose NFE is at most b on every training seed; the
``converged`` budget holds each method's adaptive cell of the tightest
tolerance (dopri5 near the exact flow of the model), whatever its NFE. Each
method's best candidate is the one with the lowest mean over training seeds
of the selection metric on the selection noise seed (``SELECTION``: W2 on
2-D data, FID on images); methods are ranked by the same number. The figure
reported for it is its held-out one (:mod:`sfbench.report.heldout`).

:func:`answers` is the tidy table ``tables/answers_<dataset>.csv``: one row
per budget and method (rank 1 is the answer, rank 2 the runner-up).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sfbench.eval.metrics import SELECTION
from sfbench.report.heldout import reported
from sfbench.report.results import Results
from sfbench.report.tables import setting_means

BUDGETS = (1, 2, 4, 8, 16, 32)
CONVERGED = "converged"


def _candidates(res: Results, dataset: str) -> pd.DataFrame:
    """The dataset's settings with a finite mean score and the most NFE any seed used."""
    means = setting_means(res)
    d = means[(means["dataset"] == dataset) & np.isfinite(means["score_mean"])]
    cells = res.cells[res.cells["dataset"] == dataset]
    most = cells.groupby(["method", "key"], sort=False)["nfe"].max().rename("nfe_max")
    return d.merge(most.reset_index(), on=["method", "key"], how="left")


def answers(res: Results, dataset: str) -> pd.DataFrame:
    """Per budget (1, 2, ..., 32 NFE, converged) and method: the method's best cell within the
    budget, ranked by mean selection-seed score; with its held-out figure and the yardsticks."""
    d = _candidates(res, dataset)
    kind = d["data_kind"].iloc[0] if len(d) else None
    rows = []
    for budget in (*BUDGETS, CONVERGED):
        if budget == CONVERGED:
            adaptive = d[d["tolerance"].notna()]
            pool = adaptive.loc[adaptive.groupby("method", sort=False)["tolerance"].idxmin()]
        else:
            pool = d[d["nfe_max"] <= budget]
        if not len(pool):
            continue
        best = pool.loc[pool.groupby("method", sort=False)["score_mean"].idxmin()]
        best = best.sort_values("score_mean", kind="stable")
        rows.append(best.assign(budget=str(budget), rank=np.arange(1, len(best) + 1)))
    if not rows:
        return pd.DataFrame()
    table = reported(res, pd.concat(rows, ignore_index=True))
    m = SELECTION[kind]
    table["metric"] = m
    columns = ["dataset", "budget", "rank", "method", "solver", "setting", "key", "common",
               "native", "nfe_mean", "nfe_max", "n_seeds", "metric", f"selection_{m}_mean",
               f"selection_{m}_std", f"{m}_mean", f"{m}_std", f"{m}_n", "figure_source"]
    table = table[columns]
    # the yardsticks: the noise floor (images: train-split images) and the Gaussian baseline
    ref = res.reference.set_index("dataset") if len(res.reference) else pd.DataFrame()
    for name, column in ((m, f"reference_{m}"), (f"{m}_std", f"reference_{m}_std"),
                         (f"baseline_{m}", f"baseline_{m}")):
        if dataset in ref.index and name in ref and np.isfinite(ref.loc[dataset, name]):
            table[column] = ref.loc[dataset, name]
    return table.reset_index(drop=True)
