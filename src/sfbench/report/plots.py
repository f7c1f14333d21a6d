"""The report's figures, rendered to PNG bytes with matplotlib's Agg backend.

- :func:`metric_vs_nfe`: a metric against NFE (log axis), one panel per
  method, one line per solver, the reference noise floor dashed; its label
  and y scale come from the metric registry (:mod:`sfbench.eval.metrics`);
- :func:`sample_grid`: scatter plots, methods x solvers, each at the solver's
  best setting for that method, next to the test split;
- :func:`trajectories`: ODE trajectories from noise (t = 0) to data (t = 1);
- :func:`save_sweep_grid`: one model's sweep, solvers x settings (an MLflow artifact);
- images: :func:`image_sample_grid` (one model, solvers x settings, a tile of
  images per cell) and :func:`save_image_sweep_grid`, the same as a file.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sfbench.eval.metrics import IMAGE, METRICS, SELECTION, VECTOR  # noqa: E402
from sfbench.io import atomic_write_bytes  # noqa: E402

DPI = 80
TILE = 4  # images per side of one cell's tile


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _lim(test: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = np.percentile(test, 0.5, axis=0), np.percentile(test, 99.5, axis=0)
    pad = 0.15 * (hi - lo)
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def _scatter(ax, points: np.ndarray, lims, title: str, color="C0") -> None:
    pts = points[np.isfinite(points).all(axis=1)]
    ax.scatter(pts[:, 0], pts[:, 1], s=1.5, alpha=0.6, color=color, linewidths=0)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)


def method_panels(d: pd.DataFrame):
    """A row of panels, one per method of ``d`` (shared y axis), and a color per solver."""
    methods = list(dict.fromkeys(d["method"]))
    solvers = list(dict.fromkeys(d["solver"]))
    colors = {s: f"C{i % 10}" for i, s in enumerate(solvers)}
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.0),
                             sharey=True, squeeze=False)
    return fig, axes, methods, solvers, colors


def panel_legend(axes) -> tuple[list, list[str]]:
    """Legend entries of a row of panels, each label once, in order of first appearance."""
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    return handles, labels


def metric_vs_nfe(means: pd.DataFrame, dataset: str, metric: str,
                  reference: float | None = None, baseline: float | None = None,
                  reference_label: str = "test vs. independent draw") -> bytes:
    """``metric`` (mean over seeds) against NFE for every method (panel) and solver (line).

    NFE on a log axis; the metric too where the registry says so (``log_axis``:
    W2, FD, FID; not the unbiased MMD² and KID, which can be < 0).
    ``reference`` (dashed, ``reference_label``) is the noise floor;
    ``baseline`` (dotted) a simple model to beat (images: the Gaussian fitted
    to the train pixels).
    """
    entry = METRICS[metric]
    d = means[means["dataset"] == dataset]
    fig, axes, methods, solvers, colors = method_panels(d)
    for ax, method in zip(axes[0], methods, strict=True):
        for solver, common in ((s, c) for s in solvers for c in (True, False)):
            # the solver's native-setting cells off the common grids: their own dash-dot line
            s = d[(d["method"] == method) & (d["solver"] == solver)
                  & (d["common"].astype(bool) == common if "common" in d else common)]
            s = s[np.isfinite(s[f"{metric}_mean"])].sort_values("nfe_mean")
            if not len(s):
                continue
            ax.errorbar(s["nfe_mean"], s[f"{metric}_mean"], yerr=s[f"{metric}_std"],
                        marker="o", markersize=3, linewidth=1, capsize=2,
                        color=colors[solver], linestyle="-" if common else "-.",
                        label=solver if common else f"{solver} (native)")
        if reference is not None and math.isfinite(reference):
            ax.axhline(reference, color="k", linestyle="--", linewidth=0.8,
                       label=reference_label)
        if baseline is not None and math.isfinite(baseline):
            ax.axhline(baseline, color="C3", linestyle=":", linewidth=1.0,
                       label="Gaussian baseline")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if entry.log_axis:
            ax.set_yscale("log")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("NFE")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(entry.plot_label)
    handles, labels = panel_legend(axes)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8,
               bbox_to_anchor=(0.5, -0.12))
    fig.suptitle(f"{dataset}: {entry.plot_label} against NFE (mean over training seeds on the "
                 "selection seed, error bar = std)", fontsize=10)
    return to_png(fig)


def sample_grid(best: pd.DataFrame, dataset: str, test: np.ndarray,
                samples: dict[tuple[str, str], np.ndarray]) -> bytes:
    """Scatter plots: a row per method, a column per solver at its best setting.

    ``samples[(method, key)]`` holds the sample set of one training seed; each
    panel is titled with its selection metric (W2).
    """
    score = SELECTION[VECTOR]
    b = best[best["dataset"] == dataset]
    methods = list(dict.fromkeys(b["method"]))
    solvers = list(dict.fromkeys(b["solver"]))
    lims = _lim(test)
    fig, axes = plt.subplots(len(methods), len(solvers) + 1,
                             figsize=(2.1 * (len(solvers) + 1), 2.2 * len(methods)),
                             squeeze=False)
    for i, method in enumerate(methods):
        _scatter(axes[i][0], test, lims, f"test split\n({method})", color="k")
        for j, solver in enumerate(solvers, start=1):
            ax = axes[i][j]
            row = b[(b["method"] == method) & (b["solver"] == solver)]
            if not len(row):
                ax.axis("off")
                continue
            row = row.iloc[0]
            pts = samples.get((method, row["key"]))
            if pts is None:
                ax.axis("off")
                continue
            _scatter(ax, pts, lims,
                     f"{method}\n{row['setting']}\n{METRICS[score].label} {row[score]:.3g}")
    fig.suptitle(f"{dataset}: samples at each solver's best setting", fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def trajectories(paths: dict[str, tuple[np.ndarray, np.ndarray]], dataset: str,
                 test: np.ndarray) -> bytes:
    """ODE trajectories (one panel per method): grey paths, noise start blue, end red.

    ``paths[method] = (trajectory [steps + 1, n, 2], t [steps + 1])``.
    """
    methods = list(paths)
    lims = _lim(test)
    fig, axes = plt.subplots(1, len(methods), figsize=(2.6 * len(methods), 2.8), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        traj, _t = paths[method]
        finite = np.isfinite(traj).all(axis=(0, 2))
        traj = traj[:, finite]
        ax.scatter(test[:, 0], test[:, 1], s=1, color="0.85", linewidths=0)
        ax.plot(traj[:, :, 0], traj[:, :, 1], color="0.3", linewidth=0.4, alpha=0.5)
        ax.scatter(traj[0, :, 0], traj[0, :, 1], s=3, color="C0", label="t = 0 (noise)")
        ax.scatter(traj[-1, :, 0], traj[-1, :, 1], s=3, color="C3", label="t = 1 (data)")
        start = np.abs(traj[0]).max() if traj.size else 1.0
        span = max(start, max(abs(v) for v in (*lims[0], *lims[1])))
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(method, fontsize=9)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{dataset}: probability-flow ODE trajectories", fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def save_sweep_grid(path: str | Path, arrays: dict[str, np.ndarray], rows: list[dict],
                    test: np.ndarray, title: str, max_columns: int = 5) -> Path:
    """One model's sweep as scatter plots: a row per solver, up to ``max_columns`` settings."""
    from sfbench.sweep.cells import npz_key

    by_solver: dict[str, list[dict]] = {}
    for row in rows:
        by_solver.setdefault(row["solver"], []).append(row)
    ncols = min(max_columns, max(len(v) for v in by_solver.values()))
    lims = _lim(test)
    score = SELECTION[VECTOR]
    fig, axes = plt.subplots(len(by_solver), ncols, figsize=(1.8 * ncols, 1.8 * len(by_solver)),
                             squeeze=False)
    for i, (solver, cells) in enumerate(by_solver.items()):
        pick = np.unique(np.linspace(0, len(cells) - 1, min(ncols, len(cells))).round().astype(int))
        for j in range(ncols):
            ax = axes[i][j]
            if j >= len(pick):
                ax.axis("off")
                continue
            c = cells[pick[j]]
            label = f"tol {c['tolerance']:.0e}" if c["tolerance"] else f"{c['steps']} steps"
            _scatter(ax, arrays[npz_key(c["key"])], lims,
                     f"{solver}, {label}\nNFE {c['nfe']}, {METRICS[score].label} {c[score]:.3g}")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return atomic_write_bytes(path, to_png(fig))


def image_tile(samples: np.ndarray, shape, side: int = TILE) -> np.ndarray:
    """The first side x side samples as one image [(H+1)*side-1, (W+1)*side-1(, C)] in [0, 1].

    Flat samples are reshaped to ``shape`` (C, H, W), clipped to [-1, 1]
    (what the FID sees before rounding) and laid out row by row; missing or
    non-finite samples stay grey.
    """
    c, h, w = shape
    n = min(side * side, samples.shape[0])
    x = np.asarray(samples[:n], dtype=np.float64).reshape(n, c, h, w)
    x = (np.clip(np.nan_to_num(x, nan=0.0), -1.0, 1.0) + 1.0) / 2.0
    # one grey pixel between images, so that neighbouring strokes do not merge
    tile = np.full((c, (h + 1) * side - 1, (w + 1) * side - 1), 0.5)
    for i in range(n):
        r, q = divmod(i, side)
        tile[:, r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = x[i]
    return tile[0] if c == 1 else tile.transpose(1, 2, 0)


def _show(ax, tile: np.ndarray, title: str) -> None:
    ax.imshow(tile, cmap="gray" if tile.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


def _setting_text(cell: dict) -> str:
    tol = cell.get("tolerance")
    if tol is not None and tol == tol:
        return f"tol {tol:.0e}"
    grid = cell.get("grid")
    suffix = f" ({grid})" if grid not in (None, "uniform", "endpoints") else ""
    return f"{int(cell['steps'])} steps{suffix}"


def image_sample_grid(cells: list[dict], samples: dict[str, np.ndarray], shape,
                      title: str, real: np.ndarray | None = None) -> bytes:
    """One model's samples: a row per solver, a column per setting, a tile of images each.

    ``cells`` are sweep cells (key, solver, steps, tolerance, grid, nfe and the
    image selection metric, FID) in the order to show; ``samples[key]`` their
    samples. ``real`` (test images) is shown as the first panel of the first row.
    """
    score = SELECTION[IMAGE]
    by_solver: dict[str, list[dict]] = {}
    for c in cells:
        by_solver.setdefault(c["solver"], []).append(c)
    ncols = max(len(v) for v in by_solver.values()) + (real is not None)
    fig, axes = plt.subplots(len(by_solver), ncols, figsize=(1.45 * ncols, 1.6 * len(by_solver)),
                             squeeze=False)
    for i, (solver, row) in enumerate(by_solver.items()):
        offset = 0
        if real is not None:
            offset = 1
            if i == 0:
                _show(axes[i][0], image_tile(real, shape), "test split")
            else:
                axes[i][0].axis("off")
        for j in range(ncols - offset):
            ax = axes[i][j + offset]
            if j >= len(row) or row[j]["key"] not in samples:
                ax.axis("off")
                continue
            c = row[j]
            _show(ax, image_tile(samples[c["key"]], shape),
                  f"{solver}, {_setting_text(c)}\nNFE {c['nfe']}, "
                  f"{METRICS[score].label} {c[score]:.3g}")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_png(fig)


def save_image_sweep_grid(path: str | Path, arrays: dict[str, np.ndarray], rows: list[dict],
                          shape, title: str) -> Path:
    """One image model's sweep as image tiles (the sweep job's plot, an MLflow artifact)."""
    from sfbench.sweep.cells import npz_key

    samples = {r["key"]: arrays[npz_key(r["key"])] for r in rows}
    return atomic_write_bytes(path, image_sample_grid(rows, samples, shape, title))
