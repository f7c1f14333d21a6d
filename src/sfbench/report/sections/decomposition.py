"""Sections of ``sfbench decompose`` and of the flows' straightness, with their tables.

The numbers come from :mod:`sfbench.report.decomposition` (tidy rows, seed
means, the plot); this module lays them out and writes ``decomposition.csv``
and ``flows.csv``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sfbench.report import decomposition
from sfbench.report.render import Figure, Heading, Paragraph, Table, fmt
from sfbench.report.results import Results
from sfbench.report.sections.common import label, pm_column, write_csv


def decomposition_blocks(res: Results, tdir: Path) -> tuple[list, list[Figure], list[Path]]:
    """Error decomposition per Gaussian-mixture dataset: blocks, figures, written tables."""
    records = res.records.get("decompose", [])
    if not records:
        return [], [], []
    table = decomposition.decomposition_table(records)
    means = decomposition.decomposition_means(table)
    written = [write_csv(table, tdir / "decomposition.csv")]
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
            label("nfe"): d["nfe_mean"].to_numpy(),
            "total W2": pm_column(d, "total_w2"),
            "discretization (oracle W2)": pm_column(d, "discretization"),
            "oracle RMSE to exact": [fmt(v) for v in d["discretization_rmse_mean"]],
            "exact flow W2": pm_column(d, "exact_flow"),
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


def flow_blocks(res: Results, tdir: Path, write_table: bool) -> tuple[list, list[Path]]:
    """Straightness and path energy of every model whose sweep (or decomposition) measured it.

    A sweep measures every model it samples; a decomposition record fills in a
    model whose sweep did not (older results, or a sweep run without it).
    ``flows.csv`` is written where the report's manifest lists it
    (``write_table``: with a decomposition), the section wherever flows were measured.
    """
    def model_of(record: dict) -> tuple:
        return tuple(record["settings"].get(k) for k in ("dataset", "method", "seed"))

    swept = [r for r in res.records.get("sweep", []) if r["result"].get("flow")]
    seen = {model_of(r) for r in swept}
    extra = [r for r in res.records.get("decompose", [])
             if r["result"].get("flow") and model_of(r) not in seen]
    flows = decomposition.flow_table(swept + extra)
    written = [write_csv(flows, tdir / "flows.csv")] if write_table else []
    if not swept + extra:
        return [], written
    blocks = [
        Heading("Straightness of the learned flows"),
        Paragraph(
            "Straightness S = E ∫ ||(x1 - x0) - v(x_t, t)||² dt along the model's own ODE "
            "paths (0 for straight, constant-speed paths) and the path energy ratio "
            "E ∫ ||v||² dt / E ||x1 - x0||² (1 for straight paths); reflow should bring both "
            "towards their straight values; and Tong et al.'s (2024) normalized path energy "
            "|PE - W2²| / W2², with W2² the exact OT cost between the same trajectories' "
            "noise starts and data ends (0 when the flow is the OT map; the minibatch-OT "
            "coupling of ot_cfm should bring it down). A one-step model is straight by "
            "construction. "
            "Measured in each model's sweep job along an RK4 solve from the sweep's starting "
            "noise (trajectories and steps: `sampling.straightness` of the preset, and in "
            "each sweep record's result.flow)."
        ),
        Table(flows.assign(
            straightness=pm_column(flows, "straightness"),
            path_energy=pm_column(flows, "path_energy_ratio"),
            normalized_path_energy=pm_column(flows, "normalized_path_energy"),
        )[["dataset", "method", "by_construction", "straightness", "path_energy",
           "normalized_path_energy"]],
            caption="mean ± std over seeds"),
    ]
    return blocks, written
