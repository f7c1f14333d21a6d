"""One section per dataset: its summary table, a metric-against-NFE figure for every
registered metric of its kind of data, and its samples.

Vector data adds the samples of each solver at its best setting and the ODE
trajectories; images add the bits/dim table and one sample grid per method.
The metrics, their labels and the selection metric come from the registry
(:mod:`sfbench.eval.metrics`), so a metric registered there gets its column
and its figure here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sfbench.eval.metrics import IMAGE, SELECTION, VECTOR, metrics_for
from sfbench.report import plots, tables
from sfbench.report.heldout import source_note
from sfbench.report.render import Figure, Table, fmt
from sfbench.report.results import Results
from sfbench.report.sections.common import (
    first_seed,
    label,
    load_samples,
    load_test_split,
    load_trajectories,
    pm_column,
)


def summary_view(s: pd.DataFrame, kind: str = VECTOR) -> pd.DataFrame:
    """The summary table of one dataset: the metrics of its kind of data, NLL, time."""
    view = pd.DataFrame({"method": s["method"], "best setting": s["best_setting"]})
    selection = SELECTION[kind]
    for metric in metrics_for(kind):
        column = f"best {metric.label}" if metric.name == selection else metric.label
        view[column] = pm_column(s, metric.name)
    view[label("nfe")] = pm_column(s, "nfe")
    nll = ["nll_nats"] if kind == VECTOR else ["nll_bits_per_dim", "vlb_bits_per_dim"]
    for name in nll:
        if f"{name}_mean" in s and s[f"{name}_mean"].notna().any():
            view[label(name)] = pm_column(s, name)
    if "train_seconds_mean" in s:
        view[label("train_seconds")] = pm_column(s, "train_seconds")
    if kind == VECTOR and f"{selection}_ratio" in s:
        view[f"{label(selection)} / noise floor"] = s[f"{selection}_ratio"].to_numpy()
    if kind == IMAGE and f"{selection}_baseline_ratio" in s:
        view[f"{label(selection)} / baseline"] = s[f"{selection}_baseline_ratio"].to_numpy()
    view["seeds"] = s["n_seeds"].to_numpy()
    return view


def _yardstick(ref: pd.DataFrame | None, dataset: str, column: str) -> float | None:
    """A reference value of ``dataset`` (a noise floor, a baseline); None when not measured."""
    if ref is None or dataset not in ref.index or column not in ref.columns:
        return None
    return float(ref.loc[dataset, column])


def _best_caption(dataset: str, selection: str, s: pd.DataFrame) -> str:
    return (f"{dataset}: methods at their best setting (lowest mean {label(selection)} over "
            f"training seeds on the selection seed); {source_note(s)}")


def vector_section(res: Results, dataset: str, summary: pd.DataFrame, means: pd.DataFrame,
                   ref: pd.DataFrame | None) -> tuple[list, list[Figure]]:
    """Summary, metric-vs-NFE plots, samples and trajectories of one 2-D dataset."""
    blocks, figures = [], []
    selection = SELECTION[VECTOR]
    s = summary[summary["dataset"] == dataset]
    caption = _best_caption(dataset, selection, s)
    if ref is not None and dataset in ref.index:
        r = ref.loc[dataset]
        floors = [f"{m.label} {fmt(r[m.name])}" + (f" ± {fmt(r[f'{m.name}_std'])}"
                                                   if m.name == selection else "")
                  for m in metrics_for(VECTOR)]
        caption += "; noise floor " + ", ".join(floors)
    blocks.append(Table(summary_view(s), caption=caption))
    for metric in metrics_for(VECTOR):
        axes = "log axes" if metric.log_axis else "log NFE axis"
        figures.append(Figure(f"{metric.name}_vs_nfe_{dataset}.png",
                              plots.metric_vs_nfe(means, dataset, metric.name,
                                                  _yardstick(ref, dataset, metric.name)),
                              f"{dataset}: {metric.plot_label} against NFE, every method and "
                              f"solver ({axes}; dash-dot: a solver's native setting off the "
                              "common grid; dashed: noise floor)"))
    test = load_test_split(res, dataset)
    if test is not None:
        seed = first_seed(res, dataset)
        samples = load_samples(res, dataset, seed)
        if samples:
            # per (method, solver) the best setting of this seed's model
            c = res.cells[(res.cells["dataset"] == dataset) & (res.cells["seed"] == seed)]
            c = c[np.isfinite(c[selection])]
            best = c.loc[c.groupby(["method", "solver"], sort=False)[selection].idxmin()]
            figures.append(Figure(f"samples_{dataset}.png",
                                  plots.sample_grid(best, dataset, test, samples),
                                  f"{dataset}: samples of the seed-{seed} models, each solver at "
                                  "its best setting (first column: test split)"))
        paths = load_trajectories(res, dataset, seed)
        if paths:
            figures.append(Figure(f"trajectories_{dataset}.png",
                                  plots.trajectories(paths, dataset, test),
                                  f"{dataset}: ODE trajectories of the seed-{seed} models"))
    return blocks + figures, figures


def _bits_table(res: Results, dataset: str) -> list[Table]:
    b = tables.bits(res)
    b = b[b["dataset"] == dataset] if len(b) else b
    if not len(b):
        return []
    view = pd.DataFrame({
        "method": b["method"],
        label("nll_bits_per_dim"): pm_column(b, "nll_bits_per_dim"),
        "stderr over test points": b["nll_bits_per_dim_stderr_mean"].to_numpy(),
        label("vlb_bits_per_dim"): pm_column(b, "vlb_bits_per_dim"),
        **{k: b[k].to_numpy() for k in ("num_points", "rtol", "atol", "t_start", "t_end",
                                         "divergence", "n_probes", "nfe")},
    })
    return [Table(view, caption=(
        f"{dataset}: bits/dim of the uniformly dequantized test images through the "
        "probability-flow ODE (dopri5 at rtol / atol, integrated over [t_start, t_end]: "
        "the t-truncation), and the DDPM variational bound (ddpm only, T steps, no "
        "dequantization); mean ± std over seeds"))]


def image_section(res: Results, dataset: str, summary: pd.DataFrame, means: pd.DataFrame,
                  ref: pd.DataFrame | None) -> tuple[list, list[Figure]]:
    """Summary, bits/dim, metric-vs-NFE plots and one sample grid per method of an image set."""
    blocks, figures = [], []
    selection = SELECTION[IMAGE]
    s = summary[summary["dataset"] == dataset]
    caption = _best_caption(dataset, selection, s)
    if ref is not None and dataset in ref.index:
        r = ref.loc[dataset]
        caption += (f"; {label(selection)} of train-split images {fmt(r[selection])} ± "
                    f"{fmt(r[f'{selection}_std'])}, Gaussian baseline "
                    f"{fmt(r[f'baseline_{selection}'])} ± "
                    f"{fmt(r[f'baseline_{selection}_std'])}")
    blocks.append(Table(summary_view(s, IMAGE), caption=caption))
    blocks += _bits_table(res, dataset)
    for metric in metrics_for(IMAGE):
        axes = "log axes" if metric.log_axis else "log NFE axis"
        png = plots.metric_vs_nfe(means, dataset, metric.name,
                                  _yardstick(ref, dataset, metric.name),
                                  _yardstick(ref, dataset, f"baseline_{metric.name}"),
                                  reference_label="train-split images")
        figures.append(Figure(f"{metric.name}_vs_nfe_{dataset}.png", png,
                              f"{dataset}: {metric.plot_label} against NFE, every method and "
                              f"solver ({axes}; dash-dot: a solver's native setting off the "
                              "common grid; dashed: train-split images, dotted: Gaussian "
                              "baseline)"))
    seed = first_seed(res, dataset)
    samples = load_samples(res, dataset, seed)
    test = load_test_split(res, dataset)
    shape = test.shape[1:] if test is not None and test.ndim == 4 else None
    for method in dict.fromkeys(res.cells.loc[res.cells["dataset"] == dataset, "method"]):
        c = res.cells[(res.cells["dataset"] == dataset) & (res.cells["seed"] == seed)
                      & (res.cells["method"] == method)]
        mine = {k: v for (m, k), v in samples.items() if m == method}
        if shape is None or not mine:
            continue
        png = plots.image_sample_grid(c.to_dict("records"), mine, shape,
                                      f"{dataset} / {method} / seed {seed}", real=test)
        figures.append(Figure(f"samples_{dataset}_{method}.png", png,
                              f"{dataset}: samples of the seed-{seed} {method} model, a row per "
                              "solver, a column per step count or tolerance (first panel: test "
                              f"images; {label(selection)} per cell)"))
    return blocks + figures, figures
