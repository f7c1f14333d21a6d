"""Sections across datasets: the quality target (vector selection metric against the noise
floor), the Gaussian baseline (image selection metric), and every method's solvers and step
counts (a table per registered metric)."""

from __future__ import annotations

import pandas as pd

from sfbench.eval.metrics import IMAGE, SELECTION, VECTOR
from sfbench.report import tables
from sfbench.report.heldout import source_note
from sfbench.report.render import Bullets, Heading, Paragraph, Table, fmt
from sfbench.report.results import Results, metric_names
from sfbench.report.sections.common import label, pm, pm_column


def quality_blocks(quality: pd.DataFrame, datasets: list[str], factor: float) -> list:
    if not len(quality):
        return []
    m = SELECTION[VECTOR]
    n_pass = int(quality["passes"].sum())
    return [
        Heading("Quality target"),
        Paragraph(
            f"Best {label(m)} within {factor:g}x the noise floor on {', '.join(datasets)}: "
            f"{n_pass} of {len(quality)} method x dataset pairs pass."
        ),
        Table(quality.rename(columns={f"{m}_mean": f"best {label(m)}",
                                      f"reference_{m}": "noise floor", f"{m}_ratio": "ratio"})),
    ]


def baseline_blocks(res: Results) -> list:
    """Each image model's best FID against the Gaussian fitted to the train pixels."""
    b = tables.baseline(res)
    if not len(b):
        return []
    m = SELECTION[IMAGE]
    n_below = int(b["below_baseline"].sum())
    verdicts = [
        f"`{r['dataset']}` {r['method']}: best {label(m)} {fmt(r[f'{m}_mean'])} "
        f"({r['best_setting']}) is {'below' if r['below_baseline'] else 'NOT below'} "
        f"the baseline {fmt(r[f'baseline_{m}'])}"
        for r in b.to_dict("records")
    ]
    return [
        Heading(f"{label(m)} against the Gaussian baseline"),
        Paragraph(
            "The baseline draws the same number of images from the Gaussian fitted to the "
            "train split's pixels (every pixel's mean and every pair's covariance), prepared "
            "and measured like model samples: a model below it has learned more than the "
            f"second-order pixel statistics. The floor is the {label(m)} of train-split images "
            f"at the same sample count. {n_below} of {len(b)} method x dataset pairs are below "
            "it."
        ),
        Bullets(verdicts),
        Table(b.rename(columns={f"{m}_mean": f"best {label(m)}", f"{m}_std": "std over seeds",
                                f"reference_{m}": "floor (train images)",
                                f"baseline_{m}": "baseline", f"{m}_baseline_ratio": "ratio"})),
    ]


def _native_columns(res: Results, common: pd.DataFrame, native: pd.DataFrame) -> dict:
    """The best native-setting cell beside each solver's best common-grid cell: its setting,
    selection metric and NFE ("same cell" where one cell is both)."""
    swept = (res.cells.groupby(["dataset", "method"])["native_swept"].any().to_dict()
             if len(res.cells) else {})
    by_solver = {(r["dataset"], r["solver"]): r for r in native.to_dict("records")}
    settings, figures, nfes = [], [], []
    for r in common.to_dict("records"):
        n = by_solver.get((r["dataset"], r["solver"]))
        m = SELECTION[r["data_kind"]]
        if n is None:
            why = "not swept" if not swept.get((r["dataset"], r["method"])) else "–"
            settings.append(why), figures.append("–"), nfes.append("–")
            continue
        settings.append("same cell" if n["key"] == r["key"] else n["setting"])
        figures.append(f"{label(m)} {pm(n[f'{m}_mean'], n[f'{m}_std'])}")
        nfes.append(fmt(n["nfe_mean"]))
    return {"best native setting": settings, "native: figure": figures,
            f"native: {label('nfe')}": nfes}


def method_blocks(res: Results, best_solver: pd.DataFrame) -> list:
    """Per method: each solver's best common-grid and native-setting cells, then one table
    per metric (and NFE)."""
    vector, image = (label(SELECTION[k]) for k in (VECTOR, IMAGE))
    blocks: list = [Heading("Methods: every solver and step count")]
    for method in res.methods:
        blocks.append(Heading(method, 3))
        b = best_solver[best_solver["method"] == method]
        common, native = b[b["cells"] == "common"], b[b["cells"] == "native"]
        blocks.append(Table(
            pd.DataFrame({
                "dataset": common["dataset"], "solver": common["solver"],
                "best common-grid setting": common["setting"],
                **{label(m): pm_column(common, m) for m in metric_names()},
                label("nfe"): common["nfe_mean"].to_numpy(),
                **_native_columns(res, common, native),
            }),
            caption=f"{method}: each solver's best cell (lowest mean {vector} on 2-D data, "
                    f"{image} on images, on the selection seed) on the common grid and in the "
                    f"solver's native setting; {source_note(b)}; – where a metric does not "
                    "apply",
        ))
        for metric in (*metric_names(), "nfe"):
            p = tables.pivot(res, method, metric)
            # only the datasets the metric applies to, and their settings
            p = p[p.notna().any(axis=1)].dropna(axis=1, how="all").reset_index()
            if len(p):
                blocks.append(Table(p, caption=f"{method}: {label(metric)} (mean over "
                                               "training seeds, selection seed) by solver "
                                               "and number of steps / tolerance"))
    return blocks
