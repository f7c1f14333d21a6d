"""Build ``results/report/`` from the pipeline's result files.

Writes ``report.md``, a self-contained ``report.html``, ``tables/*.csv``,
``figures/*.png``, ``metrics.json`` (``dvc metrics``) and ``curves.csv``
(``dvc plots``): exactly the files of the results' report manifest
(:meth:`Results.contents`, :mod:`sfbench.report.manifest`), which the
workflow and DVC read too; a report that would differ from it is an error.
Every number is printed next to the protocol that produced it (the sections
of :mod:`sfbench.report.sections` read it from the records themselves).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sfbench import provenance
from sfbench.errors import SfbenchError
from sfbench.eval.metrics import IMAGE, METRICS, SELECTION, VECTOR
from sfbench.io import atomic_write_bytes, write_json
from sfbench.report import tables
from sfbench.report.heldout import source_note
from sfbench.report.render import (
    Bullets,
    Details,
    Figure,
    Heading,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)
from sfbench.report.results import Results, load_results
from sfbench.report.sections import comparisons, datasets, protocol
from sfbench.report.sections.answers import answer_blocks
from sfbench.report.sections.common import write_csv
from sfbench.report.sections.decomposition import decomposition_blocks, flow_blocks
from sfbench.report.sections.solvers import solver_blocks


def _write_tables(res: Results, out: Path, summary, quality) -> list[Path]:
    """The CSV tables of every dataset and method, ``curves.csv`` and ``metrics.json``."""
    tdir = out / "tables"
    written = [
        write_csv(summary, tdir / "summary.csv"),
        write_csv(tables.headline(summary), tdir / "headline.csv"),
        # the external flag only where there is an external model: a preset without any
        # writes the same table as before the flag existed
        write_csv(res.cells if res.external_methods else res.cells.drop(columns="external"),
                  tdir / "cells.csv"),
        write_csv(tables.best_by_solver(res), tdir / "best_by_solver.csv"),
        write_csv(quality, tdir / "quality.csv"),
    ]
    if res.image_datasets:
        written.append(write_csv(tables.baseline(res), tdir / "baseline.csv"))
        written.append(write_csv(tables.bits(res), tdir / "bits.csv"))
    for dataset in res.datasets:
        written.append(
            write_csv(summary[summary["dataset"] == dataset], tdir / f"summary_{dataset}.csv")
        )
    for method in res.methods:
        written.append(write_csv(tables.grid(res, method), tdir / f"grid_{method}.csv"))
    written.append(write_csv(tables.curves(res), out / "curves.csv"))
    written.append(write_json(out / "metrics.json", tables.metrics_json(res)))
    return written


def _introduction(preset: str, origin: dict) -> list:
    """Where the report came from and how to read its numbers."""
    vector, image = (METRICS[SELECTION[k]].label for k in (VECTOR, IMAGE))
    return [
        Paragraph(protocol.origin_line(origin)),
        Paragraph(
            f"Preset `{preset}`. Every trained model is sampled by every solver; each cell's "
            "samples are compared with the test split. A method's best setting is the cell "
            f"with the lowest mean over training seeds of {vector} (2-D data) or {image} "
            "(images) on the selection noise seed; best-of tables report that cell on the "
            "held-out noise seeds. The noise floor is the same metric between the test split "
            "and independent draws of the dataset of the same size. The protocol behind "
            "every number is at the end."
        ),
    ]


def _headline(summary) -> list:
    vector, image = (METRICS[SELECTION[k]].label for k in (VECTOR, IMAGE))
    return [
        Heading("Headline"),
        Table(tables.headline(summary),
              caption=f"each method's best setting per dataset: {vector} (2-D data) or "
                      f"{image} (images) and its NFE; {source_note(summary)}; last row: the "
                      f"noise floor ({vector} of independent draws) and the {image} of the "
                      "Gaussian baseline; details in the dataset sections below"),
    ]


def _protocol(res: Results) -> list:
    """The protocol and the package versions: last, collapsed in the HTML."""
    return [Details("Protocol", [
        Bullets(protocol.protocol(res)),
        Heading("Package versions", 3),
        Table(protocol.versions(res)),
    ])]


def mark_external(blocks: list, names: list[str]) -> None:
    """Label the models sfbench did not train as such in every table shown: wherever a
    cell names one (a method column, the answers' best method and runner-up "name: ...")
    and where methods are the columns (the answers' wide tables)."""
    if not names:
        return
    label = {name: f"{name} (external)" for name in names}

    def relabel(value):
        if isinstance(value, str):
            head, sep, rest = value.partition(": ")
            if head in label:
                return label[head] + sep + rest
        return value

    for block in blocks:
        if isinstance(block, Details):
            mark_external(block.blocks, names)
        elif isinstance(block, Table):
            frame = block.frame.rename(columns=label)
            frame.index = frame.index.map(relabel)  # the headline's rows are its methods
            text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
            block.frame = frame.assign(**{c: frame[c].map(relabel) for c in text})


def _check_against_manifest(res: Results, out: Path, written: list[Path]) -> None:
    """The report is exactly the manifest's files: what the workflow and DVC expect."""
    expected = set(res.contents().files())
    actual = {p.relative_to(out).as_posix() for p in written}
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing or extra:
        raise SfbenchError(
            "the report differs from its manifest (sfbench.report.manifest): "
            + (f"not written (are the sample / data files there?): {', '.join(missing)}; "
               if missing else "")
            + (f"written but not listed: {', '.join(extra)}" if extra else "")
        )


def build_report(
    result_paths: list[str | Path],
    out_dir: str | Path,
    *,
    preset: str,
    config_hash: str | None = None,
    quality_datasets: list[str] = (),
    quality_factor: float = 2.0,
) -> dict:
    """Write the report under ``out_dir``; return a summary for the job's record."""
    out = Path(out_dir)
    res = load_results(result_paths)
    if not len(res.cells):
        raise ValueError("no sweep results among the inputs: nothing to report")
    contents = res.contents()
    summary = tables.summary(res)
    means = tables.setting_means(res)
    quality = tables.quality(res, list(quality_datasets), quality_factor)
    baseline = tables.baseline(res)

    written = _write_tables(res, out, summary, quality)
    origin = provenance.stamp(preset, config_hash)
    written.append(write_json(out / provenance.PROVENANCE_FILE, origin))

    blocks = _introduction(preset, origin)
    more, csvs = answer_blocks(res, out / "tables")
    blocks += more
    written += csvs
    blocks += _headline(summary)
    blocks += comparisons.quality_blocks(quality, list(quality_datasets), quality_factor)
    blocks += comparisons.baseline_blocks(res)
    figures: list[Figure] = []
    ref = res.reference.set_index("dataset") if len(res.reference) else None
    for dataset in res.datasets:
        blocks.append(Heading(f"Dataset {dataset}"))
        section = (datasets.image_section if dataset in res.image_datasets
                   else datasets.vector_section)
        more, figs = section(res, dataset, summary, means, ref)
        blocks += more
        figures += figs
    more, csvs = solver_blocks(res, out / "tables")
    blocks += more
    written += csvs
    blocks += comparisons.method_blocks(res, tables.best_by_solver(res))
    more, figs, csvs = decomposition_blocks(res, out / "tables")
    blocks += more
    figures += figs
    written += csvs
    more, csvs = flow_blocks(res, out / "tables",
                             write_table="tables/flows.csv" in contents.tables())
    blocks += more
    written += csvs
    blocks += _protocol(res)
    mark_external(blocks, res.external_methods)

    for fig in figures:
        written.append(atomic_write_bytes(out / "figures" / fig.name, fig.png))
    title = f"sfbench report: {preset}"
    written.append(atomic_write_bytes(out / "report.md", to_markdown(title, blocks).encode()))
    written.append(atomic_write_bytes(out / "report.html", to_html(title, blocks).encode()))
    _check_against_manifest(res, out, written)
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
