"""The report's tables, computed from :class:`~sfbench.report.results.Results`.

Seeds are aggregated last: a sweep setting (solver with a step count or a
tolerance, on a time grid) is compared across methods by its mean over
training seeds, and the "best setting" of a method is the one with the
lowest mean ``score`` -- W2 on vector data, FID on images -- so the reported
std is the spread over seeds at one fixed setting.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from sfbench.report.results import SELECTION, Results

METRICS = ("w2", "mmd", "fid", "kid")
#: The metrics each kind of data is measured by (the others are null there).
KIND_METRICS = {"vector": ("w2", "mmd", "fid"), "image": ("fid", "kid")}
SETTING_KEYS = ["solver", "solver_kind", "grid", "steps", "tolerance", "setting"]


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if values.count() > 1 else 0.0


def _mean_std(frame: pd.DataFrame, group: list[str], columns) -> pd.DataFrame:
    """Mean and sample std (ddof 1; 0 for one seed) of ``columns`` per group."""
    agg = {}
    for col in columns:
        agg[f"{col}_mean"] = (col, "mean")
        agg[f"{col}_std"] = (col, _std)
    out = frame.groupby(group, sort=False, dropna=False).agg(**agg)
    out["n_seeds"] = frame.groupby(group, sort=False, dropna=False)["seed"].nunique()
    return out.reset_index()


def setting_means(res: Results) -> pd.DataFrame:
    """Every (dataset, method, setting) with nfe / w2 / mmd / fid mean and std over seeds."""
    if not len(res.cells):
        return pd.DataFrame()
    group = ["dataset", "data_kind", "method", *SETTING_KEYS]
    return _mean_std(res.cells, group, ["nfe", *METRICS, "score"])


def best_by_solver(res: Results) -> pd.DataFrame:
    """For each dataset x method x solver: its best setting (lowest mean score) and metrics."""
    means = setting_means(res)
    if not len(means):
        return means
    finite = means[np.isfinite(means["score_mean"])]
    idx = finite.groupby(["dataset", "method", "solver"], sort=False)["score_mean"].idxmin()
    return finite.loc[idx].reset_index(drop=True)


def summary(res: Results) -> pd.DataFrame:
    """Per dataset x method: the best setting's metrics and NFE, with NLL and training time.

    The best setting has the lowest mean score (W2 on vectors, FID on images).
    """
    means = setting_means(res)
    if not len(means):
        return means
    finite = means[np.isfinite(means["score_mean"])]
    idx = finite.groupby(["dataset", "method"], sort=False)["score_mean"].idxmin()
    stats = [f"{m}_{s}" for m in ("w2", "fid", "mmd", "kid", "nfe") for s in ("mean", "std")]
    best = finite.loc[idx, ["dataset", "data_kind", "method", "setting", "n_seeds", *stats]]
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
        ref = res.reference[["dataset", "w2", "fid", "baseline_fid"]]
        best = best.merge(
            ref.rename(columns={"w2": "reference_w2", "fid": "reference_fid"}),
            on="dataset", how="left",
        )
        best["w2_ratio"] = best["w2_mean"] / best["reference_w2"]
        best["fid_baseline_ratio"] = best["fid_mean"] / best["baseline_fid"]
    return best.reset_index(drop=True)


def headline(summary_table: pd.DataFrame) -> pd.DataFrame:
    """Method x dataset: the best score (W2 on vectors, FID on images) and its NFE.

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
        column = f"{row['dataset']} ({metric.upper()})"
        # one seed has no spread to show: "± 0" would read as a measured zero
        spread = (f" ± {row[f'{metric}_std']:.2g}" if row["n_seeds"] > 1
                  else " (1 seed)")
        cells.setdefault(row["method"], {})[column] = (
            f"{row[f'{metric}_mean']:.3g}{spread} @ {row['nfe_mean']:.0f} NFE"
        )
        yardstick = row.get("reference_w2") if metric == "w2" else row.get("baseline_fid")
        if yardstick is not None and np.isfinite(yardstick):
            floors[column] = f"{yardstick:.3g}"
    rows = [{"method": m, **c} for m, c in cells.items()]
    if floors:
        rows.append({"method": "noise floor (W2) / Gaussian baseline (FID)", **floors})
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
        else str(int(s)) if grid == "uniform" else f"{int(s)} {grid}"
        for s, t, grid in zip(g["steps"], g["tolerance"], g["grid"], strict=True)
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

    The baseline (``sfbench sweep --reference``) is the FID of samples from
    the Gaussian fitted to the train pixels, at the sweep's sample count and
    with the same extractor; ``floor`` is the FID of train-split images.
    """
    s = summary(res)
    if not len(s) or "baseline_fid" not in s:
        return pd.DataFrame()
    b = s[(s["data_kind"] == "image") & s["baseline_fid"].notna()]
    b = b[["dataset", "method", "best_setting", "fid_mean", "fid_std", "reference_fid",
           "baseline_fid", "fid_baseline_ratio"]].copy()
    b["below_baseline"] = b["fid_mean"] < b["baseline_fid"]
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
    """Whether every method's best W2 is within ``factor`` x the reference W2 on ``datasets``."""
    s = summary(res)
    if not len(s) or "reference_w2" not in s:
        return pd.DataFrame()
    q = s[s["dataset"].isin(datasets)][["dataset", "method", "best_setting", "w2_mean",
                                        "reference_w2", "w2_ratio"]].copy()
    q["target"] = factor
    q["passes"] = q["w2_ratio"] <= factor
    return q.reset_index(drop=True)


def curves(res: Results) -> pd.DataFrame:
    """Metric against NFE: every (dataset, method, solver, setting) with its means (DVC plots)."""
    means = setting_means(res)
    if not len(means):
        return means
    cols = ["dataset", "method", "solver", "setting", "nfe_mean", "w2_mean", "mmd_mean",
            "fid_mean", "kid_mean"]
    out = means[cols].rename(columns=lambda c: c.removesuffix("_mean"))
    out["series"] = out["method"] + "/" + out["solver"]
    return out.sort_values(["dataset", "method", "solver", "nfe"], kind="stable").reset_index(
        drop=True
    )


def metrics_json(res: Results) -> dict:
    """Nested {dataset: {method: {...}}} of the summary, for ``dvc metrics show``."""
    s = summary(res)
    out: dict = {}
    keys = ["w2_mean", "w2_std", "fid_mean", "mmd_mean", "kid_mean", "nfe_mean", "nll_nats_mean",
            "nll_bits_per_dim_mean", "vlb_bits_per_dim_mean", "train_seconds_mean"]
    for row in s.to_dict("records"):
        entry = {k.removesuffix("_mean"): _clean(row.get(k)) for k in keys if k in row}
        # a metric that does not apply to the data (W2 of images, KID of points) is left out
        entry = {k: v for k, v in entry.items() if v is not None}
        out.setdefault(row["dataset"], {})[row["method"]] = entry
    for row in res.reference.to_dict("records") if len(res.reference) else []:
        ref = {k: _clean(row[k]) for k in ("w2", "mmd", "fid", "kid", "baseline_fid")}
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
