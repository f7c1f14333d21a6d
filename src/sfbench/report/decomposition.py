"""Report pieces of ``sfbench decompose``: the error terms and the flows' straightness.

- :func:`decomposition_table`: one tidy row per model x (solver, steps):
  total W2, discretization (the oracle with that solver), the model's exact
  flow and the noise floor (:mod:`sfbench.eval.decomposition` defines them);
- :func:`decomposition_means`: the same averaged over training seeds;
- :func:`decomposition_plot`: the three errors against NFE, a panel per method;
- :func:`flow_table`: straightness and normalized path energy per method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from sfbench.errors import SfbenchError
from sfbench.report.plots import method_panels, panel_legend, to_png
from sfbench.report.results import read_record
from sfbench.report.tables import _mean_std

COLUMNS = [
    "dataset", "method", "seed", "solver", "solver_kind", "steps", "nfe",
    "total_w2", "discretization", "discretization_rmse", "model_discretization_rmse",
    "exact_flow", "oracle_exact", "floor",
]
TERMS = ["total_w2", "discretization", "exact_flow", "floor"]


def load_decompose_records(paths: Iterable[str | Path]) -> list[dict]:
    """The ``decompose`` records of ``paths``; any other record is an error naming its file."""
    records = [read_record(p) for p in paths]
    for r in records:
        if r["command"] != "decompose":
            raise SfbenchError(f"{r['_path']} is a {r['command']!r} record, not decompose")
    return records


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def decomposition_table(records: Iterable[dict]) -> pd.DataFrame:
    """One row per model and cell, columns :data:`COLUMNS` (None terms become NaN)."""
    rows = []
    for rec in records:
        s, r = rec["settings"], rec["result"]
        for cell in r["cells"]:
            rows.append({
                "dataset": s["dataset"], "method": s["method"], "seed": s.get("seed"),
                "solver": cell["solver"], "solver_kind": cell["solver_kind"],
                "steps": cell["steps"], "nfe": cell["nfe"],
                "total_w2": _nan(cell["total_w2"]),
                "discretization": _nan(cell["discretization_w2"]),
                "discretization_rmse": _nan(cell["discretization_rmse"]),
                "model_discretization_rmse": _nan(cell["model_discretization_rmse"]),
                "exact_flow": _nan(r["exact_flow_w2"]),
                "oracle_exact": _nan(r["oracle_exact_w2"]),
                "floor": _nan(r["floor_w2"]),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def decomposition_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every term, per dataset, method, solver and steps."""
    group = ["dataset", "method", "solver", "solver_kind", "steps"]
    columns = ["nfe", *TERMS, "discretization_rmse", "model_discretization_rmse", "oracle_exact"]
    return _mean_std(table, group, columns)


def decomposition_plot(means: pd.DataFrame, dataset: str) -> bytes:
    """Total (solid) and discretization (dashed) W2 against NFE, a line pair per solver,
    the exact flow of the model (dotted) and the noise floor (grey), a panel per method."""
    d = means[means["dataset"] == dataset]
    if not len(d):
        raise SfbenchError(f"no decomposition of dataset {dataset!r}")
    fig, axes, methods, solvers, colors = method_panels(d)
    for ax, method in zip(axes[0], methods, strict=True):
        m = d[d["method"] == method]
        for solver in solvers:
            s = m[m["solver"] == solver].sort_values("nfe_mean")
            if not len(s):
                continue
            ax.plot(s["nfe_mean"], s["total_w2_mean"], marker="o", markersize=3,
                    linewidth=1, color=colors[solver], label=f"{solver}: total")
            if np.isfinite(s["discretization_mean"]).any():
                ax.plot(s["nfe_mean"], s["discretization_mean"], marker="x", markersize=3,
                        linewidth=1, linestyle="--", color=colors[solver],
                        label=f"{solver}: oracle (discretization)")
        ax.axhline(float(m["exact_flow_mean"].iloc[0]), color="k", linestyle=":",
                   linewidth=1, label="exact flow of the model")
        ax.axhline(float(m["floor_mean"].iloc[0]), color="0.6", linestyle="-",
                   linewidth=2, alpha=0.6, label="noise floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("NFE")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("W2 to the test split")
    handles, labels = panel_legend(axes)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=7,
               bbox_to_anchor=(0.5, -0.25))
    fig.suptitle(f"{dataset}: where the error comes from (mean over seeds)", fontsize=10)
    return to_png(fig)


def flow_table(records: Iterable[dict]) -> pd.DataFrame:
    """Straightness, path energy ratio and Tong et al.'s normalized path energy per dataset
    and method (mean, std over seeds).

    ``by_construction`` marks one-step models (distill), whose sample path is
    one straight Euler step: 0 and 1 by definition, not measured, and no
    normalized path energy (:mod:`sfbench.eval.straightness`).
    """
    rows = []
    for rec in records:
        s, flow = rec["settings"], rec["result"].get("flow") or {}
        rows.append({
            "dataset": s["dataset"], "method": s["method"], "seed": s.get("seed"),
            "straightness": _nan(flow.get("straightness")),
            "path_energy_ratio": _nan(flow.get("path_energy_ratio")),
            # Tong et al.'s |PE - W2^2| / W2^2 (none for one-step models)
            "normalized_path_energy": _nan(flow.get("normalized_path_energy")),
            "by_construction": bool(flow.get("by_construction", False)),
        })
    columns = ["straightness", "path_energy_ratio", "normalized_path_energy"]
    frame = pd.DataFrame(
        rows, columns=["dataset", "method", "seed", *columns, "by_construction"],
    )
    out = _mean_std(frame, ["dataset", "method", "by_construction"], columns)
    return out.sort_values(["dataset", "straightness_mean"], kind="stable").reset_index(drop=True)
