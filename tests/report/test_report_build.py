"""The report from hand-made result records: tables, files, HTML rendering in Chromium."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sfbench.errors import SfbenchError
from sfbench.report import tables
from sfbench.report.browser import check_in_chromium, find_chromium
from sfbench.report.build import build_report
from sfbench.report.manifest import ReportContents
from sfbench.report.results import load_results

DATASETS = ("8gaussians", "moons")
METHODS = ("cfm", "ddpm")
SEEDS = (0, 1)
ENV = {"torch": "2.x", "sfbench": "0.1.0"}

# W2 of each cell: seed 0 prefers euler/4, seed 1 prefers dopri5, but the mean
# over seeds is lowest for euler/4 -> the best setting is euler, 4 steps.
W2 = {
    ("euler", 2, None): (0.9, 0.9),
    ("euler", 4, None): (0.2, 0.4),
    ("dopri5", None, 1e-3): (0.5, 0.3),
}


def _write(path: Path, record: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "environment": ENV}))
    return str(path)


def _cell(solver, steps, tol, w2, offset):
    return {
        "key": f"{solver}/steps{steps}" if tol is None else f"{solver}/tol{tol:g}",
        "solver": solver, "solver_kind": "ode", "steps": steps, "tolerance": tol,
        "options": {} if tol is None else {"rtol": tol, "atol": tol},
        "nfe": (steps or 20 + int(offset * 10)), "sample_seconds": 0.1, "eval_seconds": 0.1,
        "n_finite": 50, "w2": w2 + offset, "mmd": w2 / 10 + offset, "fd": 2 * w2 + offset,
        "fid": None, "kid": None, "kid_std": None,
    }


@pytest.fixture(scope="module")
def result_files(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    paths = []
    for d_index, dataset in enumerate(DATASETS):
        data = root / "resources" / f"{dataset}.npz"
        data.parent.mkdir(parents=True, exist_ok=True)
        np.savez(data, train=rng.normal(size=(100, 2)), test=rng.normal(size=(50, 2)))
        paths.append(_write(root / "data" / f"{dataset}.json", {
            "command": "data", "outputs": [str(data)], "result": {},
            "settings": {"dataset": dataset, "data_seed": 0, "n_train": 100, "n_test": 50,
                         "dim": 2},
        }))
        paths.append(_write(root / "reference" / f"{dataset}.json", {
            "command": "reference", "outputs": [],
            "settings": {"mode": "reference", "dataset": dataset, "n_samples": 50,
                         "n_test": 50, "reference_seeds": [7, 8, 9], "data_kind": "vector"},
            "result": {"w2": 0.25, "w2_std": 0.01, "mmd": 0.0, "mmd_std": 0.0, "fd": 0.01,
                       "fd_std": 0.0, "draws": []},
        }))
        for m_index, method in enumerate(METHODS):
            offset = 0.01 * d_index + 0.1 * m_index
            for seed in SEEDS:
                tag = f"{dataset}/{method}/seed{seed}"
                samples = root / "samples" / f"{tag}.npz"
                samples.parent.mkdir(parents=True, exist_ok=True)
                arrays = {
                    f"{s}__steps{n}" if t is None else f"{s}__tol{t:g}": rng.normal(size=(50, 2))
                    for s, n, t in W2
                }
                np.savez(samples, **arrays, trajectory=rng.normal(size=(5, 10, 2)),
                         trajectory_t=np.linspace(0, 1, 5))
                cells = [_cell(s, n, t, w[seed], offset) for (s, n, t), w in W2.items()]
                paths.append(_write(root / "sweep" / f"{tag}.json", {
                    "command": "sweep", "outputs": [str(samples)],
                    "settings": {"mode": "model", "data_kind": "vector", "dataset": dataset,
                                 "method": method,
                                 "seed": seed, "n_samples": 50, "n_test": 50,
                                 "sampling_seed": 1, "solvers": ["euler"], "steps": [2, 4],
                                 "adaptive": {"dopri5": [1e-3]},
                                 "trajectory": {"solver": "euler", "steps": 4, "n_points": 10}},
                    "result": {"cells": cells},
                }))
                paths.append(_write(root / "train" / f"{tag}.json", {
                    "command": "train", "outputs": [],
                    "settings": {"dataset": dataset, "method": method, "seed": seed,
                                 "steps": 10, "batch_size": 8, "lr": 1e-3, "ema_decay": 0.9,
                                 "network": {"width": 4}},
                    "result": {"final_loss": 1.0, "wall_seconds": 10.0 + seed},
                }))
                paths.append(_write(root / "nll" / f"{tag}.json", {
                    "command": "evaluate", "outputs": [],
                    "settings": {"dataset": dataset, "method": method, "n_test": 50,
                                 "model": {"seed": seed}, "nll": {"rtol": 1e-5, "atol": 1e-5}},
                    "result": {"nll_nats": 2.0 + seed, "nll_stderr": 0.1, "nll_nfe": 100},
                }))
    return paths


@pytest.fixture(scope="module")
def report(result_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(result_files, out, preset="unit", quality_datasets=["moons"], quality_factor=2.0)
    return out


def test_summary_takes_the_best_setting_by_mean_over_seeds(result_files):
    s = tables.summary(load_results(result_files)).set_index(["dataset", "method"])
    row = s.loc[("8gaussians", "cfm")]
    assert row["best_setting"] == "euler, 4 steps"
    assert row["w2_mean"] == pytest.approx(0.3)
    assert row["w2_std"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert row["nfe_mean"] == 4
    assert row["nll_nats_mean"] == pytest.approx(2.5)
    assert row["train_seconds_mean"] == pytest.approx(10.5)
    assert row["w2_ratio"] == pytest.approx(0.3 / 0.25)
    assert s.loc[("moons", "ddpm"), "w2_mean"] == pytest.approx(0.3 + 0.11)


def test_best_by_solver_has_every_method_and_solver(result_files):
    b = tables.best_by_solver(load_results(result_files))
    assert len(b) == len(DATASETS) * len(METHODS) * 2
    dopri = b[(b["dataset"] == "8gaussians") & (b["method"] == "cfm") & (b["solver"] == "dopri5")]
    assert dopri["w2_mean"].item() == pytest.approx(0.4)


def test_pivot_orders_steps_then_tolerances(result_files):
    p = tables.pivot(load_results(result_files), "cfm", "w2")
    assert list(p.columns) == ["2", "4", "tol 1e-03"]
    assert p.loc[("8gaussians", "euler"), "4"] == pytest.approx(0.3)
    assert math.isnan(p.loc[("8gaussians", "dopri5"), "2"])


def test_quality_flags_the_ratio_to_the_noise_floor(result_files):
    q = tables.quality(load_results(result_files), ["moons"], 1.5)
    assert list(q["method"]) == ["cfm", "ddpm"]
    assert list(q["passes"]) == [True, False]  # 0.31 / 0.25 = 1.24, 0.41 / 0.25 = 1.64


def test_duplicate_results_for_one_job_are_refused(result_files):
    with pytest.raises(SfbenchError, match="two train results"):
        load_results([*result_files, next(p for p in result_files if "/train/" in p)])


def test_report_files(report):
    names = {p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file()}
    assert {"report.md", "report.html", "metrics.json", "curves.csv",
            "tables/summary.csv", "tables/best_by_solver.csv", "tables/cells.csv",
            "tables/summary_moons.csv", "tables/grid_cfm.csv", "tables/quality.csv"} <= names
    figures = sorted(n for n in names if n.startswith("figures/"))
    assert len(figures) == len(DATASETS) * 5  # 3 metric plots, samples, trajectories
    md = (report / "report.md").read_text()
    for fig in figures:
        assert f"]({fig})" in md
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    assert "<img" in html and 'src="figures/' not in html  # self-contained
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["8gaussians"]["cfm"]["w2"] == pytest.approx(0.3)
    assert metrics["moons"]["reference"]["w2"] == pytest.approx(0.25)
    assert "rtol" in md and "noise seed 1" in md and "torch" in md


def test_report_writes_exactly_its_manifest(report):
    """The files the workflow declares and DVC tracks (sfbench.report.manifest), no more."""
    names = {p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file()}
    assert names == set(ReportContents(DATASETS, methods=METHODS).files())


def test_report_csv_round_trips(report):
    s = pd.read_csv(report / "tables" / "summary.csv")
    assert len(s) == len(DATASETS) * len(METHODS)
    assert np.isfinite(s[["w2_mean", "nll_nats_mean"]].to_numpy()).all()


def test_report_command_writes_a_record(result_files, tmp_path):
    out, record = tmp_path / "rep", tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sfbench", "report", "--results", *result_files,
         "--out-dir", str(out), "--preset", "unit", "--quality-datasets", "none",
         "--result", str(record)],
        # a bare environment (no tracking variables), but this checkout's package
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(record.read_text())
    assert rec["command"] == "report" and rec["result"]["n_models"] == 8
    assert str(out / "report.html") in rec["outputs"]


def test_report_command_fails_cleanly_without_sweeps(result_files, tmp_path):
    record = tmp_path / "report.json"
    only_train = [p for p in result_files if "/train/" in p]
    proc = subprocess.run(
        [sys.executable, "-m", "sfbench", "report", "--results", *only_train,
         "--out-dir", str(tmp_path / "rep"), "--result", str(record)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "no sweep results" in proc.stderr
    assert not record.exists()


chromium = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


@chromium
def test_every_table_and_plot_renders_in_chromium(report):
    result = check_in_chromium(report / "report.html")
    n_figures = len(list((report / "figures").glob("*.png")))
    assert len(result["images"]) == n_figures
    assert all(img["ok"] and img["width"] > 100 for img in result["images"]), result["images"]
    assert len(result["tables"]) >= 1 + len(DATASETS) + len(METHODS) * 5
    empty = [t for t in result["tables"] if t["rows"] == 0 or t["filled"] == 0]
    assert not empty, empty


@chromium
def test_the_render_check_sees_a_broken_image(report, tmp_path):
    """The check can fail: a corrupted PNG is reported as not rendered."""
    html = (report / "report.html").read_text()
    first = re.search(r"base64,([A-Za-z0-9+/=]+)", html)
    broken = base64.b64encode(b"not a png").decode()
    page = tmp_path / "broken.html"
    page.write_text(html.replace(first.group(1), broken, 1))
    result = check_in_chromium(page)
    assert [img["ok"] for img in result["images"]].count(False) == 1


def test_decomposition_records_add_their_section_tables_and_figure(result_files, tmp_path):
    from test_decomposition_report import RECORDS

    extra = [_write(tmp_path / f"decompose{i}.json", r) for i, r in enumerate(RECORDS)]
    out = tmp_path / "report"
    build_report(result_files + extra, out, preset="unit")
    md = (out / "report.md").read_text()
    assert "Where the error comes from" in md and "Straightness of the learned flows" in md
    table = pd.read_csv(out / "tables" / "decomposition.csv")
    assert len(table) == sum(len(r["result"]["cells"]) for r in RECORDS)
    flows = pd.read_csv(out / "tables" / "flows.csv")
    assert set(flows["method"]) == {r["settings"]["method"] for r in RECORDS}
    assert (out / "figures" / "decomposition_8gaussians.png").stat().st_size > 1000
    # without decompose records, no such section and no such files
    plain = tmp_path / "plain"
    build_report(result_files, plain, preset="unit")
    assert "Where the error comes from" not in (plain / "report.md").read_text()
    assert not (plain / "tables" / "decomposition.csv").exists()


def test_flow_table_covers_every_swept_model_and_prefers_the_sweeps_measurement(
    result_files, tmp_path
):
    """Sweeps measure every model's flow; a decomposition fills in only models they lack."""
    from test_decomposition_report import RECORDS

    with_flow = []
    for i, path in enumerate(result_files):
        rec = json.loads(Path(path).read_text())
        if rec["command"] == "sweep" and rec["settings"].get("mode") == "model":
            s = rec["settings"]
            value = 10.0 + METHODS.index(s["method"]) + 0.5 * s["seed"]
            rec["result"]["flow"] = {"straightness": value, "normalized_path_energy": 1.5,
                                     "by_construction": False}
            path = _write(tmp_path / "sweeps" / f"{i}.json", rec)
        with_flow.append(str(path))
    # a decomposition of a swept model (8gaussians cfm, seed 0) with another value
    overlap = json.loads(json.dumps(RECORDS[0]))
    overlap["settings"].update(method="cfm", seed=0)
    overlap["result"]["flow"] = {"straightness": 99.0, "normalized_path_energy": 9.0}
    decomposed = [_write(tmp_path / f"decompose{i}.json", r)
                  for i, r in enumerate([*RECORDS, overlap])]
    out = tmp_path / "report"
    build_report(with_flow + decomposed, out, preset="unit")
    flows = pd.read_csv(out / "tables" / "flows.csv")
    swept = flows[flows["method"].isin(METHODS)]
    assert len(swept) == len(DATASETS) * len(METHODS)  # every swept (dataset, method)
    row = swept[(swept["dataset"] == "8gaussians") & (swept["method"] == "cfm")].iloc[0]
    # the sweeps' values (mean over seeds), not the decomposition's 99
    expected = np.mean([10.0 + METHODS.index("cfm") + 0.5 * s for s in SEEDS])
    assert row["straightness_mean"] == pytest.approx(expected)
    # models only the decomposition measured still appear
    assert {"rectified_flow", "reflow", "distill"} <= set(flows["method"])
    # no flow anywhere: no section, no file
    plain = tmp_path / "plain"
    build_report(result_files, plain, preset="unit")
    assert "Straightness of the learned flows" not in (plain / "report.md").read_text()
    assert not (plain / "tables" / "flows.csv").exists()


def test_an_external_model_appears_in_every_table_marked_external(result_files, tmp_path):
    """A model sfbench did not train (no train record; its sweep record's model says
    external) is reported beside the trained ones, labelled as external."""
    external = []
    for path in result_files:
        record = json.loads(Path(path).read_text())
        settings = record["settings"]
        if (record["command"] == "sweep" and settings["method"] == "cfm"
                and settings["seed"] == 0):
            settings.update(method="their_flow",
                                      model={"source": "torch", "external": True})
            external.append(_write(tmp_path / settings["dataset"] / "their_flow.json", record))
    out = tmp_path / "report"
    build_report([*result_files, *external], out, preset="unit")
    md = (out / "report.md").read_text()
    assert "their_flow (external)" in md
    assert "| their_flow |" not in md  # never shown unmarked in a table
    cells = pd.read_csv(out / "tables" / "cells.csv")
    assert set(cells.loc[cells["external"], "method"]) == {"their_flow"}
    assert (out / "tables" / "grid_their_flow.csv").exists()


def test_without_external_models_the_cells_table_has_no_external_column(report):
    assert "external" not in pd.read_csv(report / "tables" / "cells.csv").columns
