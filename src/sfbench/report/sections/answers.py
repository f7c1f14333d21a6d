"""The report's first section: per dataset, the best method x solver at each NFE budget.

The numbers come from :func:`sfbench.report.answers.answers` (written as
``tables/answers_<dataset>.csv``); this module lays them out: a table of the
answer and its runner-up per budget, and a wide table with every method's
best cell at each budget, the noise floor in the caption.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sfbench.eval.metrics import IMAGE, SELECTION, VECTOR
from sfbench.report.answers import BUDGETS, CONVERGED, answers
from sfbench.report.heldout import SELECTION_SEED, source_note
from sfbench.report.render import Heading, Paragraph, Table, fmt
from sfbench.report.results import Results
from sfbench.report.sections.common import label, pm, write_csv


def _budget_label(budget: str) -> str:
    return "converged" if budget == CONVERGED else f"≤ {budget} NFE"


def _figure(row: dict, mixed: bool) -> str:
    """mean ± std; marked where the table mixes held-out and selection-seed figures."""
    m = row["metric"]
    text = pm(row[f"{m}_mean"], row[f"{m}_std"])
    return text + (" (selection seed)" if mixed and row["figure_source"] == SELECTION_SEED
                   else "")


def _figure_label(table: pd.DataFrame) -> tuple[str, bool]:
    """The figure column's label, and whether its rows mix held-out and selection figures."""
    sources = set(table["figure_source"])
    m = label(table["metric"].iloc[0])
    return (f"{m} (selection seed)" if sources == {SELECTION_SEED} else f"{m} (held-out)",
            len(sources) > 1)


def _yardstick(table: pd.DataFrame, kind: str) -> str:
    """The noise floor (2-D data) or train-image floor and Gaussian baseline (images)."""
    m = SELECTION[kind]
    if f"reference_{m}" not in table:
        return ""
    floor = table[f"reference_{m}"].iloc[0]
    spread = table[f"reference_{m}_std"].iloc[0] if f"reference_{m}_std" in table else None
    if kind == VECTOR:
        return (f"; noise floor (independent draws of the data against the test split): "
                f"{label(m)} {pm(floor, spread)}")
    text = f"; {label(m)} of train-split images {pm(floor, spread)}"
    if f"baseline_{m}" in table:
        text += f", Gaussian baseline {fmt(table[f'baseline_{m}'].iloc[0])}"
    return text


def answer_view(table: pd.DataFrame) -> pd.DataFrame:
    """Rows = budgets: the best method x solver, its NFE and figure, and the runner-up."""
    figure, mixed = _figure_label(table)
    rows = []
    for budget in (*map(str, BUDGETS), CONVERGED):
        b = table[table["budget"] == budget].sort_values("rank").to_dict("records")
        if not b:
            rows.append({"budget": _budget_label(budget), "best method": "–"})
            continue
        first = b[0]
        row = {"budget": _budget_label(budget), "best method": first["method"],
               "solver (setting)": first["setting"], "NFE": fmt(first["nfe_mean"]),
               figure: _figure(first, mixed)}
        if len(b) > 1:
            row["runner-up"] = f"{b[1]['method']}: {b[1]['setting']}"
            row[f"runner-up {figure}"] = _figure(b[1], mixed)
        rows.append(row)
    return pd.DataFrame(rows).astype(object).fillna("–")


def wide_view(table: pd.DataFrame) -> pd.DataFrame:
    """Rows = budgets, columns = methods: each method's best cell within the budget."""
    methods = list(dict.fromkeys(table["method"]))
    _label, mixed = _figure_label(table)
    rows = []
    for budget in (*map(str, BUDGETS), CONVERGED):
        b = {r["method"]: r for r in table[table["budget"] == budget].to_dict("records")}
        row = {"budget": _budget_label(budget)}
        for method in methods:
            r = b.get(method)
            row[method] = (f"{_figure(r, mixed)} ({r['setting']}, {fmt(r['nfe_mean'])} NFE)"
                           if r else "–")
        rows.append(row)
    return pd.DataFrame(rows)


def answer_blocks(res: Results, tdir: Path) -> tuple[list, list[Path]]:
    """The answers section of every dataset, and its ``answers_<dataset>.csv`` files."""
    blocks: list = [
        Heading("Answers: the best method x solver at each NFE budget"),
        Paragraph(
            "Per dataset and budget: of every method's cells (solver, step count or tolerance, "
            "time grid; the common grids and each solver's native setting) whose NFE is within "
            "the budget on every training seed, the one with the lowest mean over training "
            f"seeds of {label(SELECTION[VECTOR])} (2-D data) or {label(SELECTION[IMAGE])} "
            "(images) on the selection noise seed. 'converged' is each method's adaptive "
            "(dopri5) cell of the tightest tolerance: near its model's exact flow, whatever "
            "the NFE. The figure shown is that cell's on the held-out noise seeds (mean ± std "
            "over training seeds x held-out seeds), never the draws it was chosen on; the "
            "protocol is at the end of the report."
        ),
    ]
    written = []
    for dataset in res.datasets:
        table = answers(res, dataset)
        written.append(write_csv(table, tdir / f"answers_{dataset}.csv"))
        if not len(table):
            continue
        kind = IMAGE if dataset in res.image_datasets else VECTOR
        m = label(SELECTION[kind])
        blocks += [
            Heading(f"{dataset} ({m})", 3),
            Table(answer_view(table),
                  caption=f"{dataset}: the best method x solver per NFE budget and the best "
                          f"other method's cell (runner-up); {source_note(table)}"
                          f"{_yardstick(table, kind)}"),
            Table(wide_view(table),
                  caption=f"{dataset}: every method's best cell within each budget: "
                          f"{_figure_label(table)[0]}, its setting and NFE"),
        ]
    return blocks, written
