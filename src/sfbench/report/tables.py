"""The report's tables, computed from :class:`~sfbench.report.results.Results`.

Seeds are aggregated last: a sweep setting (solver with a step count or a
tolerance, on a time grid) is compared across methods by its mean over
training seeds, and the "best setting" of a method is the one with the
lowest mean ``score`` -- the registry's selection metric of the kind of data
(``SELECTION``: W2 on vector data, FID on images) -- so the reported std is
the spread over seeds at one fixed setting. Every registered metric is a
column (``{name}_mean``, ``{name}_std``); the yardsticks of the reference
records are ``reference_{name}`` and, for the image selection metric,
``baseline_{name}``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from sfbench.eval.metrics import IMAGE, METRICS, SELECTION, VECTOR
from sfbench.report.heldout import reported, sample_std
from sfbench.report.results import Results, metric_names

#: What identifies one setting of a method across its training seeds (a cell key of its sweeps).
SETTING_KEYS = ["solver", "solver_kind", "grid", "steps", "tolerance", "setting", "key",
                "common", "native"]


def _mean_std(frame: pd.DataFrame, group: list[str], columns) -> pd.DataFrame:
    """Mean and sample std (ddof 1; 0 for one seed) of ``columns`` per group."""
    agg = {}
    for col in columns:
        agg[f"{col}_mean"] = (col, "mean")
        agg[f"{col}_std"] = (col, sample_std)
    out = frame.groupby(group, sort=False, dropna=False).agg(**agg)
    out["n_seeds"] = frame.groupby(group, sort=False, dropna=False)["seed"].nunique()
    return out.reset_index()


def setting_means(res: Results) -> pd.DataFrame:
    """Every (dataset, method, setting) with nfe and every metric: mean and std over seeds."""
    if not len(res.cells):
        return pd.DataFrame()
    group = ["dataset", "data_kind", "method", *SETTING_KEYS]
    return _mean_std(res.cells, group, ["nfe", *metric_names(), "score"])


def best_by_solver(res: Results) -> pd.DataFrame:
    """For each dataset x method x solver: its best common-grid cell and its best
    native-setting cell (lowest mean selection-seed score), with their held-out figures.

    One row each, ``cells`` = "common" / "native"; a cell that is both (euler on
    the uniform grid) appears in both. Records without native cells give common rows only.
    """
    means = setting_means(res)
    if not len(means):
        return means
    finite = means[np.isfinite(means["score_mean"])]
    group = ["dataset", "method", "solver"]
    rows = []
    for cells in ("common", "native"):
        mine = finite[finite[cells].astype(bool)]
        if len(mine):
            rows.append(mine.loc[mine.groupby(group, sort=False)["score_mean"].idxmin()]
                        .assign(cells=cells))
    if not rows:
        return finite.iloc[:0]
    best = pd.concat(rows, ignore_index=True)
    # each solver's common row, then its native row, solvers in the order of the sweeps
    best = best.assign(_order=best.groupby(group, sort=False).ngroup())
    best = best.sort_values(["_order", "cells"], kind="stable").drop(columns="_order")
    return reported(res, best)


def summary(res: Results) -> pd.DataFrame:
    """Per dataset x method: the best setting's metrics and NFE, with NLL and training time.

    The best setting has the lowest mean score (the selection metric of the data's kind,
    on the selection noise seed); its metrics are its held-out figures
    (:func:`sfbench.report.heldout.reported`).
    """
    means = setting_means(res)
    if not len(means):
        return means
    finite = means[np.isfinite(means["score_mean"])]
    idx = finite.groupby(["dataset", "method"], sort=False)["score_mean"].idxmin()
    chosen = reported(res, finite.loc[idx])  # held-out figures of the selection-seed choice
    stats = [f"{m}_{s}" for m in metric_names() for s in ("mean", "std", "n")]
    stats += ["nfe_mean", "nfe_std", *(f"selection_{m}_{s}" for m in metric_names()
                                       for s in ("mean", "std"))]
    best = chosen[["dataset", "data_kind", "method", "setting", "key", "n_seeds",
                   "figure_source", *stats]]
    best = best.rename(columns={"setting": "best_setting"})
    if len(res.nll):
        nll_columns = ["nll_nats", "nll_bits_per_dim", "vlb_bits_per_dim"]
        best = best.merge(
            _mean_std(res.nll, ["dataset", "method"], nll_columns).drop(columns="n_seeds"),
            on=["dataset", "method"], how="left",
        )
    if len(res.train):
        best = best.merge(
            _mean_std(res.train, ["dataset", "method"], ["train_seconds"]).drop(columns="n_seeds"),
            on=["dataset", "method"], how="left",
        )
    if len(res.reference):
        vector, image = SELECTION[VECTOR], SELECTION[IMAGE]
        ref = res.reference[["dataset", *metric_names(), f"baseline_{image}"]]
        best = best.merge(
            ref.rename(columns={m: f"reference_{m}" for m in metric_names()}),
            on="dataset", how="left",
        )
        # the yardsticks: vector data's noise floor, images' Gaussian baseline
        best[f"{vector}_ratio"] = best[f"{vector}_mean"] / best[f"reference_{vector}"]
        best[f"{image}_baseline_ratio"] = best[f"{image}_mean"] / best[f"baseline_{image}"]
    return best.reset_index(drop=True)


def headline(summary_table: pd.DataFrame) -> pd.DataFrame:
    """Method x dataset: the best score (the selection metric) and its NFE.

    One row per method, one column per dataset, and a last row with each
    dataset's yardstick (the W2 noise floor; the FID of the Gaussian baseline).
    """
    if not len(summary_table):
        return pd.DataFrame()
    s = summary_table
    cells: dict[str, dict[str, str]] = {}
    floors: dict[str, str] = {}
    for row in s.to_dict("records"):
        metric = SELECTION[row["data_kind"]]
        column = f"{row['dataset']} ({METRICS[metric].label})"
        # one seed has no spread to show: "± 0" would read as a measured zero
        n = row.get(f"{metric}_n", row["n_seeds"])
        spread = f" ± {row[f'{metric}_std']:.2g}" if n > 1 else " (1 seed)"
        cells.setdefault(row["method"], {})[column] = (
            f"{row[f'{metric}_mean']:.3g}{spread} @ {row['nfe_mean']:.0f} NFE"
        )
        yardstick = row.get(f"{'reference' if row['data_kind'] == VECTOR else 'baseline'}_"
                            f"{metric}")
        if yardstick is not None and np.isfinite(yardstick):
            floors[column] = f"{yardstick:.3g}"
    rows = [{"method": m, **c} for m, c in cells.items()]
    if floors:
        vector, image = (METRICS[SELECTION[k]].label for k in (VECTOR, IMAGE))
        rows.append({"method": f"noise floor ({vector}) / Gaussian baseline ({image})", **floors})
    return pd.DataFrame(rows).fillna("–")


def grid(res: Results, method: str) -> pd.DataFrame:
    """One method's sweep: dataset x solver x (steps or tolerance), mean and std over seeds."""
    means = setting_means(res)
    if not len(means):
        return means
    return means[means["method"] == method].drop(columns="method").reset_index(drop=True)


def pivot(res: Results, method: str, metric: str) -> pd.DataFrame:
    """``metric`` (mean over seeds) of one method as (dataset, solver) x setting columns."""
    g = grid(res, method)
    if not len(g):
        return g
    g = g.assign(column=[
        f"tol {t:.0e}" if t == t and t is not None
        else (str(int(s)) if grid == "uniform" else f"{int(s)} {grid}")
        + ("" if common else " native")  # a native-setting cell off the common grids
        for s, t, grid, common in zip(g["steps"], g["tolerance"], g["grid"], g["common"],
                                      strict=True)
    ])
    fixed = g.loc[g["tolerance"].isna()]
    # uniform grid first, then the other grids; steps ascending within a grid
    fixed = sorted(zip(fixed["grid"], fixed["steps"], fixed["column"], strict=True),
                   key=lambda r: (r[0] != "uniform", r[0], r[1]))
    order = list(dict.fromkeys(
        [column for _grid, _steps, column in fixed]
        + sorted(g.loc[g["tolerance"].notna(), "column"], key=lambda c: -float(c[4:]))
    ))
    table = g.pivot_table(index=["dataset", "solver"], columns="column",
                          values=f"{metric}_mean", aggfunc="first", sort=False)
    return table.reindex(columns=order)


def baseline(res: Results) -> pd.DataFrame:
    """Per image dataset x method: whether the best FID is below the Gaussian baseline's.

    The baseline (``sfbench reference``) is the FID (the image selection
    metric) of samples from the Gaussian fitted to the train pixels, at the
    sweep's sample count and with the same extractor; ``reference_fid`` is the
    FID of train-split images.
    """
    m = SELECTION[IMAGE]
    s = summary(res)
    if not len(s) or f"baseline_{m}" not in s:
        return pd.DataFrame()
    b = s[(s["data_kind"] == IMAGE) & s[f"baseline_{m}"].notna()]
    b = b[["dataset", "method", "best_setting", f"{m}_mean", f"{m}_std", f"reference_{m}",
           f"baseline_{m}", f"{m}_baseline_ratio"]].copy()
    b["below_baseline"] = b[f"{m}_mean"] < b[f"baseline_{m}"]
    return b.reset_index(drop=True)


def bits(res: Results) -> pd.DataFrame:
    """Per image dataset x method: NLL bits/dim (probability-flow ODE) and DDPM VLB bits/dim.

    With the settings that shape the number: test points, dopri5 tolerances,
    integration interval [t_start, t_end] (the t-truncation), divergence
    estimator and probes, dequantization.
    """
    if not len(res.nll) or not res.nll["nll_bits_per_dim"].notna().any():
        return pd.DataFrame()
    n = res.nll[res.nll["nll_bits_per_dim"].notna()]
    out = _mean_std(n, ["dataset", "method"],
                    ["nll_bits_per_dim", "nll_bits_per_dim_stderr", "vlb_bits_per_dim"])
    settings = n.groupby(["dataset", "method"], sort=False).first()["nll_settings"]
    keys = ("num_points", "rtol", "atol", "t_start", "t_end", "divergence", "n_probes", "nfe")
    for key in keys:
        out[key] = [json.loads(settings[(d, m)]).get(key)
                    for d, m in zip(out["dataset"], out["method"], strict=True)]
    return out


def quality(res: Results, datasets: list[str], factor: float) -> pd.DataFrame:
    """Whether every method's best W2 (the vector selection metric) is within ``factor`` x
    its noise floor on ``datasets``."""
    m = SELECTION[VECTOR]
    s = summary(res)
    if not len(s) or f"reference_{m}" not in s:
        return pd.DataFrame()
    q = s[s["dataset"].isin(datasets)][["dataset", "method", "best_setting", f"{m}_mean",
                                        f"reference_{m}", f"{m}_ratio"]].copy()
    q["target"] = factor
    q["passes"] = q[f"{m}_ratio"] <= factor
    return q.reset_index(drop=True)


def curves(res: Results) -> pd.DataFrame:
    """Metric against NFE: every (dataset, method, solver, setting) with its means (DVC plots)."""
    means = setting_means(res)
    if not len(means):
        return means
    cols = ["dataset", "method", "solver", "setting", "nfe_mean",
            *(f"{m}_mean" for m in metric_names())]
    out = means[cols].rename(columns=lambda c: c.removesuffix("_mean"))
    out["series"] = out["method"] + "/" + out["solver"]
    return out.sort_values(["dataset", "method", "solver", "nfe"], kind="stable").reset_index(
        drop=True
    )


def metrics_json(res: Results) -> dict:
    """Nested {dataset: {method: {...}}} of the summary, for ``dvc metrics show``.

    Per method: every metric's mean, the selection metric's std, NFE, NLL and
    training time; per dataset a ``reference`` entry with the noise floors and
    the image baseline.
    """
    s = summary(res)
    out: dict = {}
    means = [f"{m}_mean" for m in (*metric_names(), "nfe", "nll_nats", "nll_bits_per_dim",
                                   "vlb_bits_per_dim", "train_seconds")]
    for row in s.to_dict("records"):
        keys = [*means, f"{SELECTION[row['data_kind']]}_std"]
        entry = {k.removesuffix("_mean"): _clean(row.get(k)) for k in keys if k in row}
        # a metric that does not apply to the data (W2 of images, KID of points) is left out
        entry = {k: v for k, v in entry.items() if v is not None}
        out.setdefault(row["dataset"], {})[row["method"]] = entry
    for row in res.reference.to_dict("records") if len(res.reference) else []:
        ref = {k: _clean(row[k]) for k in (*metric_names(), f"baseline_{SELECTION[IMAGE]}")}
        out.setdefault(row["dataset"], {})["reference"] = {
            k: v for k, v in ref.items() if v is not None
        }
    return out


def _clean(value):
    """A JSON-safe number: None for NaN / missing, rounded to 6 significant digits."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}")
