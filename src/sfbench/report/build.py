"""Build ``results/report/`` from the pipeline's result files.

Writes ``report.md``, a self-contained ``report.html``, ``tables/*.csv``,
``figures/*.png``, ``metrics.json`` (``dvc metrics``) and ``curves.csv``
(``dvc plots``). Every number is printed next to the protocol that produced
it: sample counts, test-set sizes, seeds, solver settings, NLL tolerances and
package versions, all read from the records themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sfbench.io import atomic_write_bytes, write_json
from sfbench.report import plots, tables
from sfbench.report.render import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Table,
    fmt,
    to_html,
    to_markdown,
)
from sfbench.report.results import Results, load_results

FLOAT_FORMAT = "%.6g"  # CSV numbers: stable text, enough digits for every metric


def _pm(mean, std) -> str:
    return f"{fmt(mean)} ± {fmt(std)}"


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write_bytes(path, frame.to_csv(index=False, float_format=FLOAT_FORMAT).encode())


def _unique(values) -> list:
    seen = []
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key not in [json.dumps(s, sort_keys=True, default=str) for s in seen]:
            seen.append(v)
    return seen


def protocol(res: Results) -> list[str]:
    """The settings behind the numbers, one line each, read from the records."""
    lines = []
    for r in res.data.to_dict("records") if len(res.data) else []:
        lines.append(
            f"data `{r['dataset']}`: {r['n_train']} training points, {r['n_test']} test points, "
            f"data seed {r['data_seed']}"
        )
    sweeps = res.records.get("sweep", [])
    for s in _unique(
        {k: r["settings"][k] for k in ("n_samples", "n_test", "sampling_seed", "solvers", "steps",
                                       "adaptive", "trajectory")}
        for r in sweeps
    ):
        adaptive = "; ".join(
            f"{name} at rtol = atol in {', '.join(f'{t:g}' for t in tols)}"
            for name, tols in s["adaptive"].items()
        ) or "none"
        lines.append(
            f"sampling: {s['n_samples']} samples per cell against {s['n_test']} test points, "
            f"noise seed {s['sampling_seed']} (sample i starts from the same noise in every cell); "
            f"fixed-step solvers {', '.join(s['solvers'])} at {', '.join(map(str, s['steps']))} "
            f"steps on a uniform grid; adaptive: {adaptive}"
        )
        if s.get("trajectory"):
            t = s["trajectory"]
            lines.append(
                f"trajectories: first {t['n_points']} samples of {t['solver']} "
                f"at {t['steps']} steps"
            )
    seeds = sorted(set(res.train["seed"])) if len(res.train) else []
    if seeds:
        lines.append(f"training seeds: {', '.join(map(str, seeds))} (mean ± std over these)")
    for t in _unique(
        {k: r["settings"].get(k) for k in ("method", "steps", "batch_size", "lr", "ema_decay",
                                           "network")}
        for r in res.records.get("train", [])
    ):
        lines.append(
            f"training `{t['method']}`: {t['steps']} steps, batch {t['batch_size']}, lr {t['lr']}, "
            f"EMA {t['ema_decay']}, network {json.dumps(t['network'], sort_keys=True)}"
        )
    resumed = [r for r in res.records.get("train", []) if r["result"].get("resumed_from_step")]
    if resumed:
        lines.append(
            f"{len(resumed)} of {len(res.records['train'])} models resumed from a checkpoint; "
            "their training time counts only the part after the resume"
        )
    for n in _unique(
        {"n_test": r["settings"].get("n_test"), **(r["settings"].get("nll") or {})}
        for r in res.records.get("nll", [])
    ):
        rest = ", ".join(f"{k} {v}" for k, v in n.items() if k != "n_test")
        lines.append(f"NLL: {n['n_test']} test points, probability-flow ODE; {rest}")
    for r in res.reference.to_dict("records") if len(res.reference) else []:
        lines.append(
            f"noise floor `{r['dataset']}`: {len(r['reference_seeds'])} independent draws of "
            f"{r['n_samples']} points (data seeds {', '.join(map(str, r['reference_seeds']))}) "
            f"against the test split"
        )
    from sfbench.eval.distances import MMD_BANDWIDTHS

    lines.append(
        "metrics: exact W2 (POT `emd2`, squared Euclidean cost); unbiased MMD² with RBF "
        f"bandwidths {', '.join(map(str, MMD_BANDWIDTHS))}; FID = Fréchet distance of the "
        "raw coordinates; NLL in nats per point"
    )
    return lines


def versions(res: Results) -> pd.DataFrame:
    envs = [r.get("environment") or {} for rs in res.records.values() for r in rs]
    keys = sorted({k for e in envs for k in e})
    rows = []
    for k in keys:
        vals = sorted({str(e.get(k)) for e in envs})
        rows.append({"package": k, "version": ", ".join(vals)})
    return pd.DataFrame(rows)


def _summary_view(s: pd.DataFrame) -> pd.DataFrame:
    view = pd.DataFrame({
        "method": s["method"],
        "best setting": s["best_setting"],
        "best W2": [_pm(m, d) for m, d in zip(s["w2_mean"], s["w2_std"], strict=True)],
        "FID": [_pm(m, d) for m, d in zip(s["fid_mean"], s["fid_std"], strict=True)],
        "MMD²": [_pm(m, d) for m, d in zip(s["mmd_mean"], s["mmd_std"], strict=True)],
        "NFE": [_pm(m, d) for m, d in zip(s["nfe_mean"], s["nfe_std"], strict=True)],
    })
    if "nll_nats_mean" in s:
        view["NLL (nats)"] = [
            _pm(m, d) for m, d in zip(s["nll_nats_mean"], s["nll_nats_std"], strict=True)
        ]
    if "train_seconds_mean" in s:
        view["train time (s)"] = [
            _pm(m, d) for m, d in zip(s["train_seconds_mean"], s["train_seconds_std"], strict=True)
        ]
    if "w2_ratio" in s:
        view["W2 / noise floor"] = s["w2_ratio"].to_numpy()
    view["seeds"] = s["n_seeds"].to_numpy()
    return view


def _load_samples(res: Results, dataset: str, seed: int) -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for (d, method, s), path in res.sample_files.items():
        if d != dataset or s != seed or not path.is_file():
            continue
        with np.load(path) as z:
            for name in z.files:
                if "__" in name:
                    out[(method, name.replace("__", "/"))] = z[name]
    return out


def _load_trajectories(res: Results, dataset: str, seed: int) -> dict:
    out = {}
    for (d, method, s), path in res.sample_files.items():
        if d == dataset and s == seed and path.is_file():
            with np.load(path) as z:
                if "trajectory" in z.files:
                    out[method] = (z["trajectory"], z["trajectory_t"])
    return out


def _test_split(res: Results, dataset: str) -> np.ndarray | None:
    path = res.data_files.get(dataset)
    if path is None or not path.is_file():
        return None
    with np.load(path) as z:
        return z["test"]


def build_report(
    result_paths: list[str | Path],
    out_dir: str | Path,
    *,
    preset: str,
    quality_datasets: list[str] = (),
    quality_factor: float = 2.0,
) -> dict:
    """Write the report under ``out_dir``; return a summary for the job's record."""
    out = Path(out_dir)
    res = load_results(result_paths)
    if not len(res.cells):
        raise ValueError("no sweep results among the inputs: nothing to report")
    written: list[Path] = []
    figures: list[Figure] = []

    summary = tables.summary(res)
    means = tables.setting_means(res)
    best_solver = tables.best_by_solver(res)
    quality = tables.quality(res, list(quality_datasets), quality_factor)
    curves = tables.curves(res)

    tdir = out / "tables"
    written.append(_write_csv(summary, tdir / "summary.csv"))
    written.append(_write_csv(res.cells, tdir / "cells.csv"))
    written.append(_write_csv(best_solver, tdir / "best_by_solver.csv"))
    written.append(_write_csv(quality, tdir / "quality.csv"))
    for dataset in res.datasets:
        written.append(
            _write_csv(summary[summary["dataset"] == dataset], tdir / f"summary_{dataset}.csv")
        )
    for method in res.methods:
        written.append(_write_csv(tables.grid(res, method), tdir / f"grid_{method}.csv"))
    written.append(_write_csv(curves, out / "curves.csv"))
    written.append(write_json(out / "metrics.json", tables.metrics_json(res)))

    blocks: list = [
        Paragraph(
            f"Preset `{preset}`. Every trained model is sampled by every solver; each cell's "
            "samples are compared with the held-out test split. Numbers are the mean ± std "
            "over training seeds; a method's best setting is the solver setting with the "
            "lowest mean W2. The noise floor is the same metric between the test split and "
            "independent draws of the dataset of the same size."
        ),
        Heading("Protocol"),
        Bullets(protocol(res)),
    ]
    if len(quality):
        n_pass = int(quality["passes"].sum())
        blocks += [
            Heading("Quality target"),
            Paragraph(
                f"Best W2 within {quality_factor:g}x the noise floor on "
                f"{', '.join(quality_datasets)}: {n_pass} of {len(quality)} method x dataset "
                "pairs pass."
            ),
            Table(quality.rename(columns={"w2_mean": "best W2", "reference_w2": "noise floor",
                                          "w2_ratio": "ratio"})),
        ]
    ref = res.reference.set_index("dataset") if len(res.reference) else None
    for dataset in res.datasets:
        s = summary[summary["dataset"] == dataset]
        blocks.append(Heading(f"Dataset {dataset}"))
        caption = f"{dataset}: methods at their best setting (mean ± std over seeds)"
        if ref is not None and dataset in ref.index:
            r = ref.loc[dataset]
            caption += (f"; noise floor W2 {fmt(r['w2'])} ± {fmt(r['w2_std'])}, "
                        f"MMD² {fmt(r['mmd'])}, FID {fmt(r['fid'])}")
        blocks.append(Table(_summary_view(s), caption=caption))
        for metric in tables.METRICS:
            floor = float(ref.loc[dataset, metric]) if ref is not None and dataset in ref.index \
                else None
            fig = Figure(f"{metric}_vs_nfe_{dataset}.png",
                         plots.metric_vs_nfe(means, dataset, metric, floor),
                         f"{dataset}: {plots.METRIC_LABELS[metric]} against NFE, every method "
                         "and solver (log axes; dashed: noise floor)")
            figures.append(fig)
            blocks.append(fig)
        test = _test_split(res, dataset)
        if test is not None:
            seed = int(res.cells.loc[res.cells["dataset"] == dataset, "seed"].min())
            samples = _load_samples(res, dataset, seed)
            if samples:
                # per (method, solver) the best setting of this seed's model
                c = res.cells[(res.cells["dataset"] == dataset) & (res.cells["seed"] == seed)]
                c = c[np.isfinite(c["w2"])]
                best = c.loc[c.groupby(["method", "solver"], sort=False)["w2"].idxmin()]
                fig = Figure(f"samples_{dataset}.png",
                             plots.sample_grid(best, dataset, test, samples),
                             f"{dataset}: samples of the seed-{seed} models, each solver at its "
                             "best setting (first column: test split)")
                figures.append(fig)
                blocks.append(fig)
            paths = _load_trajectories(res, dataset, seed)
            if paths:
                fig = Figure(f"trajectories_{dataset}.png",
                             plots.trajectories(paths, dataset, test),
                             f"{dataset}: ODE trajectories of the seed-{seed} models")
                figures.append(fig)
                blocks.append(fig)
    blocks.append(Heading("Methods: every solver and step count"))
    for method in res.methods:
        blocks.append(Heading(method, 3))
        b = best_solver[best_solver["method"] == method]
        blocks.append(Table(
            pd.DataFrame({
                "dataset": b["dataset"], "solver": b["solver"], "best setting": b["setting"],
                "W2": [_pm(m, d) for m, d in zip(b["w2_mean"], b["w2_std"], strict=True)],
                "MMD²": [_pm(m, d) for m, d in zip(b["mmd_mean"], b["mmd_std"], strict=True)],
                "FID": [_pm(m, d) for m, d in zip(b["fid_mean"], b["fid_std"], strict=True)],
                "NFE": b["nfe_mean"].to_numpy(),
            }),
            caption=f"{method}: each solver at its best setting",
        ))
        for metric, label in (("w2", "W2"), ("mmd", "MMD²"), ("fid", "FID"), ("nfe", "NFE")):
            p = tables.pivot(res, method, metric).reset_index()
            blocks.append(Table(p, caption=f"{method}: {label} (mean over seeds) by solver "
                                           "and number of steps / tolerance"))
    blocks += [Heading("Package versions"), Table(versions(res))]

    fdir = out / "figures"
    for fig in figures:
        written.append(atomic_write_bytes(fdir / fig.name, fig.png))
    title = f"sfbench report: {preset}"
    written.append(atomic_write_bytes(out / "report.md", to_markdown(title, blocks).encode()))
    written.append(atomic_write_bytes(out / "report.html", to_html(title, blocks).encode()))
    return {
        "datasets": res.datasets,
        "methods": res.methods,
        "n_models": int(res.cells.groupby(["dataset", "method", "seed"]).ngroups),
        "n_cells": len(res.cells),
        "n_figures": len(figures),
        "quality_passed": int(quality["passes"].sum()) if len(quality) else None,
        "quality_checked": len(quality),
        "outputs": [str(p) for p in written],
    }
