"""The report's tables, computed from :class:`~sfbench.report.results.Results`.

Seeds are aggregated last: a sweep setting (solver with a step count or a
tolerance) is compared across methods by its mean over training seeds, and
the "best setting" of a method is the one with the lowest mean W2, so the
reported std is the spread over seeds at one fixed setting.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sfbench.report.results import Results

METRICS = ("w2", "mmd", "fid")
SETTING_KEYS = ["solver", "solver_kind", "steps", "tolerance", "setting"]


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
    group = ["dataset", "method", *SETTING_KEYS]
    return _mean_std(res.cells, group, ["nfe", *METRICS])


def best_by_solver(res: Results) -> pd.DataFrame:
    """For each dataset x method x solver: its best setting (lowest mean W2) and its metrics."""
    means = setting_means(res)
    if not len(means):
        return means
    finite = means[np.isfinite(means["w2_mean"])]
    idx = finite.groupby(["dataset", "method", "solver"], sort=False)["w2_mean"].idxmin()
    return finite.loc[idx].reset_index(drop=True)


def summary(res: Results) -> pd.DataFrame:
    """Per dataset x method: the best setting's W2, FID, MMD, NFE, with NLL and training time."""
    means = setting_means(res)
    if not len(means):
        return means
    finite = means[np.isfinite(means["w2_mean"])]
    idx = finite.groupby(["dataset", "method"], sort=False)["w2_mean"].idxmin()
    stats = [f"{m}_{s}" for m in ("w2", "fid", "mmd", "nfe") for s in ("mean", "std")]
    best = finite.loc[idx, ["dataset", "method", "setting", "n_seeds", *stats]]
    best = best.rename(columns={"setting": "best_setting"})
    if len(res.nll):
        best = best.merge(
            _mean_std(res.nll, ["dataset", "method"], ["nll_nats"]).drop(columns="n_seeds"),
            on=["dataset", "method"], how="left",
        )
    if len(res.train):
        best = best.merge(
            _mean_std(res.train, ["dataset", "method"], ["train_seconds"]).drop(columns="n_seeds"),
            on=["dataset", "method"], how="left",
        )
    if len(res.reference):
        best = best.merge(
            res.reference[["dataset", "w2"]].rename(columns={"w2": "reference_w2"}),
            on="dataset", how="left",
        )
        best["w2_ratio"] = best["w2_mean"] / best["reference_w2"]
    return best.reset_index(drop=True)


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
        f"tol {t:.0e}" if t == t and t is not None else str(int(s))
        for s, t in zip(g["steps"], g["tolerance"], strict=True)
    ])
    order = list(dict.fromkeys(
        sorted(g.loc[g["tolerance"].isna(), "column"], key=int)
        + sorted(g.loc[g["tolerance"].notna(), "column"], key=lambda c: -float(c[4:]))
    ))
    table = g.pivot_table(index=["dataset", "solver"], columns="column",
                          values=f"{metric}_mean", aggfunc="first", sort=False)
    return table.reindex(columns=order)


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
    cols = ["dataset", "method", "solver", "setting", "nfe_mean", "w2_mean", "mmd_mean", "fid_mean"]
    out = means[cols].rename(columns=lambda c: c.removesuffix("_mean"))
    out["series"] = out["method"] + "/" + out["solver"]
    return out.sort_values(["dataset", "method", "solver", "nfe"], kind="stable").reset_index(
        drop=True
    )


def metrics_json(res: Results) -> dict:
    """Nested {dataset: {method: {...}}} of the summary, for ``dvc metrics show``."""
    s = summary(res)
    out: dict = {}
    keys = ["w2_mean", "w2_std", "fid_mean", "mmd_mean", "nfe_mean", "nll_nats_mean",
            "train_seconds_mean"]
    for row in s.to_dict("records"):
        entry = {k.removesuffix("_mean"): _clean(row.get(k)) for k in keys if k in row}
        out.setdefault(row["dataset"], {})[row["method"]] = entry
    for row in res.reference.to_dict("records") if len(res.reference) else []:
        out.setdefault(row["dataset"], {})["reference"] = {
            "w2": _clean(row["w2"]), "mmd": _clean(row["mmd"]), "fid": _clean(row["fid"])
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
