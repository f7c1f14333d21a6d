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

from sfbench import provenance
from sfbench.io import atomic_write_bytes, write_json
from sfbench.report import decomposition, plots, results, tables
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
    if mean is None or mean != mean:  # a metric that does not apply here: no "± 0"
        return fmt(None)
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
        {**{k: r["settings"][k] for k in ("n_samples", "n_test", "sampling_seed", "solvers",
                                          "steps", "adaptive", "trajectory")},
         "grids": r["settings"].get("grids", ["uniform"]),
         "data_kind": r["settings"].get("data_kind", "vector")}
        for r in sweeps
    ):
        adaptive = "; ".join(
            f"{name} at rtol = atol in {', '.join(f'{t:g}' for t in tols)}"
            for name, tols in s["adaptive"].items()
        ) or "none"
        grids = " and ".join(s["grids"])
        lines.append(
            f"sampling ({s['data_kind']} data): {s['n_samples']} samples per cell against "
            f"{s['n_test']} test points, noise seed {s['sampling_seed']} (sample i starts from "
            f"the same noise in every cell); fixed-step solvers {', '.join(s['solvers'])} at "
            f"{', '.join(map(str, s['steps']))} steps on the {grids} time grid; "
            f"adaptive: {adaptive}"
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
        seeds = ", ".join(map(str, r["reference_seeds"]))
        if r["data_kind"] == "image":
            lines.append(
                f"FID yardsticks `{r['dataset']}` ({r['n_samples']} images each, seeds {seeds}): "
                "floor = random subsets of the train split; baseline = samples of the Gaussian "
                "fitted to the train split's pixels (mean and full covariance: what matching "
                "the first two pixel moments alone gives), clipped and rounded like samples"
            )
            continue
        lines.append(
            f"noise floor `{r['dataset']}`: {len(r['reference_seeds'])} independent draws of "
            f"{r['n_samples']} points (data seeds {seeds}) against the test split"
        )
    lines += _image_protocol(res)
    from sfbench.eval.distances import MMD_BANDWIDTHS

    lines.append(
        "metrics: exact W2 (POT `emd2`, squared Euclidean cost); unbiased MMD² with RBF "
        f"bandwidths {', '.join(map(str, MMD_BANDWIDTHS))}; FID = Fréchet distance of the "
        "raw coordinates (2-D data); NLL in nats per point"
    )
    return lines


def _image_protocol(res: Results) -> list[str]:
    """The FID protocol of every image sweep and the classifiers, read from their records."""
    lines = []
    for p in _unique(
        r["settings"]["fid_protocol"] for r in res.records.get("sweep", [])
        if r["settings"].get("fid_protocol")
    ):
        text = (
            f"FID/KID `{p['dataset']}`: extractor {p['extractor']} (sha256 "
            f"{(p.get('extractor_sha256') or '')[:16]}…), features: {p.get('features')}; "
            f"{p['n_samples']} samples per cell against the {p['n_reference']} images of the "
            f"{p['reference_split']} split; samples: {p['sample_preprocessing']}; resize "
            f"{p.get('resize')}; KID: {p['kid_subsets']} subsets of {p['kid_subset_size']}, "
            f"kernel {p['kid_kernel']}"
        )
        if p.get("classifier_test_accuracy") is not None:
            text += f"; classifier test accuracy {p['classifier_test_accuracy']:.4f}"
        lines.append(text)
    for r in res.records.get("classifier", []):
        s, out = r["settings"], r["result"]
        lines.append(
            f"digits classifier (trained by the pipeline on the train split): {s.get('steps')} "
            f"steps, seed {s.get('seed')}, test accuracy {out['test_accuracy']:.4f} on "
            f"{out['n_test']} images, sha256 {out['sha256'][:16]}…"
        )
    return lines


def _origin_line(origin: dict) -> str:
    """Where the report came from, and how to tell whether it is still current."""
    m = origin["machine"]
    where = f"{m['cpu']}, {m['logical_cpus']} logical CPUs" + (f", {m['gpu']}" if m["gpu"] else "")
    commit = origin["git_commit"][:12] + (" with uncommitted changes" if origin["git_dirty"]
                                          else "")
    return (
        f"Built from commit `{commit}`, preset `{origin['preset']}` (config hash "
        f"`{origin['config_hash']}`), on {where} ({m['os']}); torch "
        f"{origin['libraries'].get('torch')}. `sfbench report --check` says whether this "
        f"report is stale for the code and preset of a checkout (`{provenance.PROVENANCE_FILE}` "
        "holds the fingerprints it compares)."
    )


def versions(res: Results) -> pd.DataFrame:
    envs = [r.get("environment") or {} for rs in res.records.values() for r in rs]
    keys = sorted({k for e in envs for k in e})
    rows = []
    for k in keys:
        vals = sorted({str(e.get(k)) for e in envs})
        rows.append({"package": k, "version": ", ".join(vals)})
    return pd.DataFrame(rows)


LABELS = {"w2": "W2", "mmd": "MMD²", "fid": "FID", "kid": "KID", "nfe": "NFE",
          "nll_nats": "NLL (nats)", "nll_bits_per_dim": "NLL (bits/dim)",
          "vlb_bits_per_dim": "VLB (bits/dim)", "train_seconds": "train time (s)"}


def _pm_column(s: pd.DataFrame, name: str) -> list[str]:
    return [_pm(m, d) for m, d in zip(s[f"{name}_mean"], s[f"{name}_std"], strict=True)]


def _summary_view(s: pd.DataFrame, kind: str = "vector") -> pd.DataFrame:
    """The summary table of one dataset: the metrics of its kind of data, NLL, time."""
    view = pd.DataFrame({"method": s["method"], "best setting": s["best_setting"]})
    for metric in tables.KIND_METRICS[kind]:
        label = LABELS[metric]
        view[f"best {label}" if metric == results.SELECTION[kind] else label] = \
            _pm_column(s, metric)
    view["NFE"] = _pm_column(s, "nfe")
    nll = ["nll_nats"] if kind == "vector" else ["nll_bits_per_dim", "vlb_bits_per_dim"]
    for name in nll:
        if f"{name}_mean" in s and s[f"{name}_mean"].notna().any():
            view[LABELS[name]] = _pm_column(s, name)
    if "train_seconds_mean" in s:
        view[LABELS["train_seconds"]] = _pm_column(s, "train_seconds")
    if kind == "vector" and "w2_ratio" in s:
        view["W2 / noise floor"] = s["w2_ratio"].to_numpy()
    if kind == "image" and "fid_baseline_ratio" in s:
        view["FID / baseline"] = s["fid_baseline_ratio"].to_numpy()
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


def _vector_section(res, dataset, summary, means, ref) -> tuple[list, list[Figure]]:
    """Summary, metric-vs-NFE plots, samples and trajectories of one 2-D dataset."""
    blocks, figures = [], []
    s = summary[summary["dataset"] == dataset]
    caption = f"{dataset}: methods at their best setting (lowest mean W2; mean ± std over seeds)"
    if ref is not None and dataset in ref.index:
        r = ref.loc[dataset]
        caption += (f"; noise floor W2 {fmt(r['w2'])} ± {fmt(r['w2_std'])}, "
                    f"MMD² {fmt(r['mmd'])}, FID {fmt(r['fid'])}")
    blocks.append(Table(_summary_view(s), caption=caption))
    for metric in tables.KIND_METRICS["vector"]:
        floor = float(ref.loc[dataset, metric]) if ref is not None and dataset in ref.index \
            else None
        figures.append(Figure(f"{metric}_vs_nfe_{dataset}.png",
                              plots.metric_vs_nfe(means, dataset, metric, floor),
                              f"{dataset}: {plots.METRIC_LABELS[metric]} against NFE, every "
                              "method and solver (log axes; dashed: noise floor)"))
    test = _test_split(res, dataset)
    if test is not None:
        seed = int(res.cells.loc[res.cells["dataset"] == dataset, "seed"].min())
        samples = _load_samples(res, dataset, seed)
        if samples:
            # per (method, solver) the best setting of this seed's model
            c = res.cells[(res.cells["dataset"] == dataset) & (res.cells["seed"] == seed)]
            c = c[np.isfinite(c["w2"])]
            best = c.loc[c.groupby(["method", "solver"], sort=False)["w2"].idxmin()]
            figures.append(Figure(f"samples_{dataset}.png",
                                  plots.sample_grid(best, dataset, test, samples),
                                  f"{dataset}: samples of the seed-{seed} models, each solver at "
                                  "its best setting (first column: test split)"))
        paths = _load_trajectories(res, dataset, seed)
        if paths:
            figures.append(Figure(f"trajectories_{dataset}.png",
                                  plots.trajectories(paths, dataset, test),
                                  f"{dataset}: ODE trajectories of the seed-{seed} models"))
    return blocks + figures, figures


def _image_section(res, dataset, summary, means, ref) -> tuple[list, list[Figure]]:
    """Summary, bits/dim, FID/KID-vs-NFE plots and one sample grid per method of an image set."""
    blocks, figures = [], []
    s = summary[summary["dataset"] == dataset]
    caption = f"{dataset}: methods at their best setting (lowest mean FID; mean ± std over seeds)"
    floor = baseline = None
    if ref is not None and dataset in ref.index:
        r = ref.loc[dataset]
        floor, baseline = float(r["fid"]), float(r["baseline_fid"])
        caption += (f"; FID of train-split images {fmt(r['fid'])} ± {fmt(r['fid_std'])}, "
                    f"Gaussian baseline {fmt(r['baseline_fid'])} ± {fmt(r['baseline_fid_std'])}")
    blocks.append(Table(_summary_view(s, "image"), caption=caption))
    b = tables.bits(res)
    b = b[b["dataset"] == dataset] if len(b) else b
    if len(b):
        view = pd.DataFrame({
            "method": b["method"],
            "NLL (bits/dim)": _pm_column(b, "nll_bits_per_dim"),
            "stderr over test points": b["nll_bits_per_dim_stderr_mean"].to_numpy(),
            "VLB (bits/dim)": _pm_column(b, "vlb_bits_per_dim"),
            **{k: b[k].to_numpy() for k in ("num_points", "rtol", "atol", "t_start", "t_end",
                                             "divergence", "n_probes", "nfe")},
        })
        blocks.append(Table(view, caption=(
            f"{dataset}: bits/dim of the uniformly dequantized test images through the "
            "probability-flow ODE (dopri5 at rtol / atol, integrated over [t_start, t_end]: "
            "the t-truncation), and the DDPM variational bound (ddpm only, T steps, no "
            "dequantization); mean ± std over seeds")))
    labels = plots.IMAGE_METRIC_LABELS
    for metric in tables.KIND_METRICS["image"]:
        line = (floor, baseline)
        if metric == "kid" and floor is not None:
            line = (float(ref.loc[dataset, "kid"]), float(ref.loc[dataset, "baseline_kid"]))
        figures.append(Figure(f"{metric}_vs_nfe_{dataset}.png",
                              plots.metric_vs_nfe(means, dataset, metric, *line,
                                                  metric_labels=labels,
                                                  reference_label="train-split images"),
                              f"{dataset}: {labels[metric]} against NFE, every method and "
                              "solver (log NFE axis; dashed: train-split images, dotted: Gaussian "
                              "baseline)"))
    seed = int(res.cells.loc[res.cells["dataset"] == dataset, "seed"].min())
    samples = _load_samples(res, dataset, seed)
    test = _test_split(res, dataset)
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
                              "images; FID per cell)"))
    return blocks + figures, figures


def _baseline_blocks(res: Results) -> list:
    b = tables.baseline(res)
    if not len(b):
        return []
    n_below = int(b["below_baseline"].sum())
    verdicts = [
        f"`{r['dataset']}` {r['method']}: best FID {fmt(r['fid_mean'])} "
        f"({r['best_setting']}) is {'below' if r['below_baseline'] else 'NOT below'} "
        f"the baseline {fmt(r['baseline_fid'])}"
        for r in b.to_dict("records")
    ]
    return [
        Heading("FID against the Gaussian baseline"),
        Paragraph(
            "The baseline draws the same number of images from the Gaussian fitted to the "
            "train split's pixels (every pixel's mean and every pair's covariance), prepared "
            "and measured like model samples: a model below it has learned more than the "
            "second-order pixel statistics. The floor is the FID of train-split images at the "
            f"same sample count. {n_below} of {len(b)} method x dataset pairs are below it."
        ),
        Bullets(verdicts),
        Table(b.rename(columns={"fid_mean": "best FID", "fid_std": "std over seeds",
                                "reference_fid": "floor (train images)",
                                "baseline_fid": "baseline", "fid_baseline_ratio": "ratio"})),
    ]


def _decomposition_blocks(res: Results, tdir: Path) -> tuple[list, list[Figure], list[Path]]:
    """Error decomposition per Gaussian-mixture dataset and the straightness of every flow."""
    records = res.records.get("decompose", [])
    if not records:
        return [], [], []
    table = decomposition.decomposition_table(records)
    means = decomposition.decomposition_means(table)
    written = [_write_csv(table, tdir / "decomposition.csv")]
    blocks: list = [
        Heading("Where the error comes from"),
        Paragraph(
            "For each model of a Gaussian-mixture dataset and each solver x steps, on the "
            "same noise: the total W2 of the trained model with that solver against the test "
            "split; the discretization error, the same solver on the exact oracle of the "
            "same path (W2 against the test split: for ODE solvers also the RMSE to the "
            "oracle's exact flow on the same noise); and the W2 of the trained model's exact "
            "flow (dopri5 at a tight tolerance), which no solver can beat. Total well above "
            "the exact flow: the solver is the bottleneck; exact flow well above the floor: "
            "training is. ot_cfm, reflow and distill have no closed-form oracle (their "
            "coupling is not the independent one): their oracle terms are blank."
        ),
    ]
    figures = []
    for dataset in dict.fromkeys(table["dataset"]):
        d = means[means["dataset"] == dataset]
        view = pd.DataFrame({
            "method": d["method"], "solver": d["solver"], "steps": d["steps"],
            "NFE": d["nfe_mean"].to_numpy(),
            "total W2": _pm_column(d, "total_w2"),
            "discretization (oracle W2)": _pm_column(d, "discretization"),
            "oracle RMSE to exact": [fmt(v) for v in d["discretization_rmse_mean"]],
            "exact flow W2": _pm_column(d, "exact_flow"),
            "noise floor": [fmt(v) for v in d["floor_mean"]],
        })
        blocks.append(Table(view, caption=f"{dataset}: error decomposition (mean ± std over "
                                          "the decomposed seeds)"))
        fig = Figure(f"decomposition_{dataset}.png",
                     decomposition.decomposition_plot(means, dataset),
                     f"{dataset}: total W2 (solid), oracle discretization (dashed), the "
                     "model's exact flow (dotted) and the noise floor against NFE")
        figures.append(fig)
        blocks.append(fig)
    return blocks, figures, written


def _flow_blocks(res: Results, tdir: Path) -> tuple[list, list[Path]]:
    """Straightness and path energy of every model whose sweep (or decomposition) measured it.

    A sweep measures every model it samples; a decomposition record fills in a
    model whose sweep did not (older results, or a sweep run without it).
    """
    def model_of(record: dict) -> tuple:
        return tuple(record["settings"].get(k) for k in ("dataset", "method", "seed"))

    swept = [r for r in res.records.get("sweep", []) if r["result"].get("flow")]
    seen = {model_of(r) for r in swept}
    extra = [r for r in res.records.get("decompose", [])
             if r["result"].get("flow") and model_of(r) not in seen]
    if not swept + extra:
        return [], []
    flows = decomposition.flow_table(swept + extra)
    blocks = [
        Heading("Straightness of the learned flows"),
        Paragraph(
            "Straightness S = E ∫ ||(x1 - x0) - v(x_t, t)||² dt along the model's own ODE "
            "paths (0 for straight, constant-speed paths) and the normalized path energy "
            "E ∫ ||v||² dt / E ||x1 - x0||² (1 for straight paths); reflow should bring both "
            "towards their straight values. A one-step model is straight by construction. "
            "Measured in each model's sweep job along an RK4 solve from the sweep's starting "
            "noise (trajectories and steps: `sampling.straightness` of the preset, and in "
            "each sweep record's result.flow)."
        ),
        Table(flows.assign(
            straightness=_pm_column(flows, "straightness"),
            path_energy=_pm_column(flows, "normalized_path_energy"),
        )[["dataset", "method", "by_construction", "straightness", "path_energy"]],
            caption="mean ± std over seeds"),
    ]
    return blocks, [_write_csv(flows, tdir / "flows.csv")]


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
    baseline = tables.baseline(res)
    bits = tables.bits(res)
    curves = tables.curves(res)

    tdir = out / "tables"
    written.append(_write_csv(summary, tdir / "summary.csv"))
    top = tables.headline(summary)
    written.append(_write_csv(top, tdir / "headline.csv"))
    written.append(_write_csv(res.cells, tdir / "cells.csv"))
    written.append(_write_csv(best_solver, tdir / "best_by_solver.csv"))
    written.append(_write_csv(quality, tdir / "quality.csv"))
    if res.image_datasets:
        written.append(_write_csv(baseline, tdir / "baseline.csv"))
        written.append(_write_csv(bits, tdir / "bits.csv"))
    for dataset in res.datasets:
        written.append(
            _write_csv(summary[summary["dataset"] == dataset], tdir / f"summary_{dataset}.csv")
        )
    for method in res.methods:
        written.append(_write_csv(tables.grid(res, method), tdir / f"grid_{method}.csv"))
    written.append(_write_csv(curves, out / "curves.csv"))
    written.append(write_json(out / "metrics.json", tables.metrics_json(res)))
    origin = provenance.stamp(preset)
    written.append(write_json(out / provenance.PROVENANCE_FILE, origin))

    blocks: list = [
        Paragraph(_origin_line(origin)),
        Paragraph(
            f"Preset `{preset}`. Every trained model is sampled by every solver; each cell's "
            "samples are compared with the held-out test split. Numbers are the mean ± std "
            "over training seeds; a method's best setting is the solver setting with the "
            "lowest mean W2 (2-D data) or FID (images). The noise floor is the same metric "
            "between the test split and independent draws of the dataset of the same size."
        ),
        Heading("Headline"),
        Table(top, caption="each method's best setting per dataset: mean ± std over training "
                           "seeds of the lowest-mean W2 (2-D data) or FID (images), and its NFE; "
                           "last row: the noise floor (W2 of independent draws) and the FID of "
                           "the Gaussian baseline; details in the dataset sections below"),
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
    blocks += _baseline_blocks(res)
    ref = res.reference.set_index("dataset") if len(res.reference) else None
    for dataset in res.datasets:
        blocks.append(Heading(f"Dataset {dataset}"))
        section = _image_section if dataset in res.image_datasets else _vector_section
        more, figs = section(res, dataset, summary, means, ref)
        blocks += more
        figures += figs
    blocks.append(Heading("Methods: every solver and step count"))
    for method in res.methods:
        blocks.append(Heading(method, 3))
        b = best_solver[best_solver["method"] == method]
        blocks.append(Table(
            pd.DataFrame({
                "dataset": b["dataset"], "solver": b["solver"], "best setting": b["setting"],
                **{LABELS[m]: _pm_column(b, m) for m in tables.METRICS},
                "NFE": b["nfe_mean"].to_numpy(),
            }),
            caption=f"{method}: each solver at its best setting (W2 on 2-D data, FID on "
                    "images; – where a metric does not apply)",
        ))
        for metric in (*tables.METRICS, "nfe"):
            p = tables.pivot(res, method, metric)
            # only the datasets the metric applies to, and their settings
            p = p[p.notna().any(axis=1)].dropna(axis=1, how="all").reset_index()
            if len(p):
                blocks.append(Table(p, caption=f"{method}: {LABELS[metric]} (mean over seeds) "
                                               "by solver and number of steps / tolerance"))
    more, figs, csvs = _decomposition_blocks(res, tdir)
    blocks += more
    figures += figs
    written += csvs
    more, csvs = _flow_blocks(res, tdir)
    blocks += more
    written += csvs
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
        "baseline_beaten": int(baseline["below_baseline"].sum()) if len(baseline) else None,
        "baseline_checked": len(baseline),
        "outputs": [str(p) for p in written],
    }
