"""The figure a best-of table reports for a chosen cell: its held-out draws.

A sweep samples every cell on the selection noise seed (``sampling_seed``)
and on each held-out noise seed (``held_out_seeds``; contract B). Cells are
*chosen* on the selection seed (the lowest mean over training seeds of the
selection metric, :data:`sfbench.eval.metrics.SELECTION`); the number a
best-of table prints for the chosen cell is its mean ± std over training
seeds x held-out seeds, so the choice cannot flatter it (a minimum over
noisy cells, reported on the draws it was taken on, is biased low).

Records without held-out seeds fall back to the selection-seed values;
``figure_source`` says which one a row holds, and the tables' captions say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sfbench.report.results import Results, metric_names

CELL = ["dataset", "method", "key"]
HELD_OUT, SELECTION_SEED = "held-out seeds", "selection seed"


def sample_std(values: pd.Series) -> float:
    """Sample std (ddof 1) of the finite values; 0 for a single one."""
    return float(values.std(ddof=1)) if values.count() > 1 else 0.0


def held_out_stats(res: Results) -> pd.DataFrame:
    """Per (dataset, method, cell key): every metric's mean, std and count over the training
    seeds x held-out noise seeds of that cell."""
    h = res.held_out
    if not len(h):
        return pd.DataFrame(columns=CELL)
    groups = h.groupby(CELL, sort=False)
    stats = {}
    for m in metric_names():
        stats[f"{m}_ho_mean"] = groups[m].mean()
        stats[f"{m}_ho_std"] = groups[m].agg(sample_std)
        stats[f"{m}_ho_n"] = groups[m].count()
    return pd.DataFrame(stats).reset_index()


def reported(res: Results, chosen: pd.DataFrame) -> pd.DataFrame:
    """``chosen`` (rows of :func:`sfbench.report.tables.setting_means`) with the figures to
    report.

    ``{m}_mean`` / ``{m}_std`` become the held-out mean and std of the cell
    (``{m}_n`` values), where it has held-out values of ``m``; the
    selection-seed mean and std over training seeds move to
    ``selection_{m}_mean`` / ``selection_{m}_std``. ``score_mean`` (what the
    cell was chosen by) stays the selection-seed value.
    """
    out = chosen.reset_index(drop=True).copy()
    if not len(out):
        return out
    stats = held_out_stats(res)
    if len(stats):
        out = out.merge(stats, on=CELL, how="left")
    any_held = np.zeros(len(out), dtype=bool)
    for m in metric_names():
        n = out[f"{m}_ho_n"].fillna(0).to_numpy() if f"{m}_ho_n" in out else np.zeros(len(out))
        use = n > 0
        mean, std = out[f"{m}_mean"].to_numpy(), out[f"{m}_std"].to_numpy()
        out[f"selection_{m}_mean"], out[f"selection_{m}_std"] = mean, std
        if use.any():
            out[f"{m}_mean"] = np.where(use, out[f"{m}_ho_mean"], mean)
            out[f"{m}_std"] = np.where(use, out[f"{m}_ho_std"], std)
        seeds = np.where(np.isfinite(mean), out["n_seeds"].to_numpy(), 0)
        out[f"{m}_n"] = np.where(use, n, seeds).astype(int)
        any_held |= use
    out["figure_source"] = np.where(any_held, HELD_OUT, SELECTION_SEED)
    return out.drop(columns=[c for c in out if "_ho_" in c])


def source_note(frame: pd.DataFrame) -> str:
    """A caption's words on where the figures of ``frame`` come from."""
    sources = set(frame["figure_source"]) if "figure_source" in frame and len(frame) else set()
    if sources == {HELD_OUT}:
        return ("figures: mean ± std over training seeds x held-out noise seeds (the cell is "
                "chosen on the selection seed)")
    if HELD_OUT in sources:
        return ("figures: mean ± std over training seeds x held-out noise seeds, except rows "
                "marked 'selection seed' (their records have no held-out seeds: chosen and "
                "measured on the same draws, so optimistic)")
    return ("figures: mean ± std over training seeds of the selection seed (these records have "
            "no held-out seeds: chosen and measured on the same draws, so optimistic)")
