"""The report follows the metric registry and its manifest.

A metric registered in :mod:`sfbench.eval.metrics` -- and nothing else
edited -- gets its column in the tables, its grid table, its entry in
metrics.json and its ``{metric}_vs_nfe_{dataset}.png``; vector data's
coordinate Frechet distance (``fd``) and images' FID (``fid``) stay apart;
and the report writes exactly the files of its manifest.

The records are written in the format of the result files (contract item 5),
their metric values computed by the registry's own evaluator
(:func:`sfbench.eval.metrics.evaluator`) on small sample sets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sfbench.errors import SfbenchError
from sfbench.eval.metrics import METRICS, SELECTION, VECTOR, Metric, evaluator, metrics_for
from sfbench.report import tables
from sfbench.report.build import build_report
from sfbench.report.manifest import ReportContents
from sfbench.report.results import load_results

DATASET = "blobs"
METHODS = ("cfm", "ddpm")
SEEDS = (0, 1)
CELLS = (("euler", 2), ("euler", 4), ("heun", 2))  # fixed-step solver, steps
N = 40


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo), V-statistic."""
    def mean_dist(a, b):
        return float(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1).mean())

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


ENERGY = Metric("energy", "Energy", "energy distance", frozenset({VECTOR}),
                lambda test: lambda x: {"energy": energy_distance(x, test)})


def _write(path: Path, record: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "environment": {"torch": "2.x"}}))
    return str(path)


def _key(solver: str, steps: int) -> str:
    return f"{solver}/steps{steps}"


def vector_records(root: Path) -> list[str]:
    """data, reference, train and sweep records of one 2-D dataset, scored by the registry.

    A model's samples are the test distribution shifted by an offset that
    shrinks with the step count, so the metrics have something to rank.
    """
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))
    data = root / "resources" / f"{DATASET}.npz"
    data.parent.mkdir(parents=True, exist_ok=True)
    np.savez(data, train=train, test=test)
    evaluate = evaluator(VECTOR, test)  # every key of metric_keys(), the registered ones too
    paths = [_write(root / "data.json", {
        "command": "data", "outputs": [str(data)], "result": {},
        "settings": {"dataset": DATASET, "data_seed": 0, "n_train": N, "n_test": N, "dim": 2}})]
    draws = [{"data_seed": 7 + k, **evaluate(rng.normal(size=(N, 2)))} for k in range(3)]
    floor = {}
    for m in metrics_for(VECTOR):
        values = [d[m.name] for d in draws]
        floor.update({m.name: float(np.mean(values)), f"{m.name}_std": float(np.std(values))})
    paths.append(_write(root / "reference.json", {
        "command": "reference", "outputs": [],
        "settings": {"mode": "reference", "data_kind": "vector", "dataset": DATASET,
                     "n_samples": N, "n_test": N, "reference_seeds": [7, 8, 9]},
        "result": {**floor, "draws": draws}}))
    for method in METHODS:
        for seed in SEEDS:
            tag = f"{method}/seed{seed}"
            arrays, cells = {}, []
            for solver, steps in CELLS:
                x = rng.normal(size=(N, 2)) + (1.0 + seed + (solver == "heun")) / steps
                arrays[_key(solver, steps).replace("/", "__")] = x
                cells.append({"key": _key(solver, steps), "solver": solver, "solver_kind": "ode",
                              "steps": steps, "tolerance": None, "grid": "uniform",
                              "options": {}, "nfe": steps * (1 + (solver == "heun")),
                              "n_finite": N, **evaluate(x)})
            samples = root / "samples" / f"{tag}.npz"
            samples.parent.mkdir(parents=True, exist_ok=True)
            np.savez(samples, **arrays, trajectory=rng.normal(size=(3, 5, 2)),
                     trajectory_t=np.linspace(0, 1, 3))
            best = min(cells, key=lambda c: c[SELECTION[VECTOR]])
            paths.append(_write(root / "sweep" / f"{tag}.json", {
                "command": "sweep", "outputs": [str(samples)],
                "settings": {"mode": "model", "data_kind": "vector", "dataset": DATASET,
                             "method": method, "seed": seed, "n_samples": N, "n_test": N,
                             "sampling_seed": 1, "solvers": ["euler", "heun"], "steps": [2, 4],
                             "grids": ["uniform"], "adaptive": {},
                             "trajectory": {"solver": "heun", "steps": 2, "n_points": 5}},
                "result": {"cells": cells, "selection_metric": SELECTION[VECTOR],
                           **{f"best_{name}": best.get(name) for name in METRICS}}}))
            paths.append(_write(root / "train" / f"{tag}.json", {
                "command": "train", "outputs": [],
                "settings": {"dataset": DATASET, "method": method, "seed": seed, "steps": 10,
                             "batch_size": 8, "lr": 1e-3, "ema_decay": 0.9,
                             "network": {"width": 4}},
                "result": {"final_loss": 1.0, "wall_seconds": 1.0}}))
    return paths


def _files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_a_registered_metric_reaches_every_table_and_gets_its_figure(tmp_path, monkeypatch):
    monkeypatch.setitem(METRICS, "energy", ENERGY)  # the only edit: a registry entry
    paths = vector_records(tmp_path / "results")
    out = tmp_path / "report"
    build_report(paths, out, preset="unit")

    files = _files(out)
    assert f"figures/energy_vs_nfe_{DATASET}.png" in files
    assert (out / "figures" / f"energy_vs_nfe_{DATASET}.png").stat().st_size > 1000
    # the manifest (which the workflow reads) lists the new figure too, and nothing else differs
    assert files == set(ReportContents((DATASET,), methods=METHODS).files())

    cells = pd.read_csv(out / "tables" / "cells.csv")
    records = [json.loads(Path(p).read_text()) for p in paths if "/sweep/" in p]
    expected = {(r["settings"]["method"], r["settings"]["seed"], c["key"]): c["energy"]
                for r in records for c in r["result"]["cells"]}
    got = {(m, s, k): e for m, s, k, e in
           zip(cells["method"], cells["seed"], cells["key"], cells["energy"], strict=True)}
    assert got == pytest.approx(expected, rel=1e-5)  # CSV keeps 6 significant digits

    summary = pd.read_csv(out / "tables" / "summary.csv").set_index("method")
    assert {"energy_mean", "energy_std", "reference_energy"} <= set(summary.columns)
    reference = json.loads(Path(paths[1]).read_text())["result"]["energy"]
    assert summary.loc["cfm", "reference_energy"] == pytest.approx(reference, rel=1e-5)
    grid = pd.read_csv(out / "tables" / "grid_cfm.csv")
    assert grid["energy_mean"].notna().all()
    assert "energy" in pd.read_csv(out / "curves.csv").columns
    metrics = json.loads((out / "metrics.json").read_text())
    assert "energy" in metrics[DATASET]["cfm"] and "energy" in metrics[DATASET]["reference"]

    md = (out / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| method | best setting"))
    assert "| Energy |" in header  # the dataset's summary table
    assert ("*cfm: Energy (mean over training seeds, selection seed) by solver and number of "
            "steps / tolerance*") in md
    assert "energy distance against NFE" in md


def test_without_the_entry_there_is_no_such_column_or_figure(tmp_path):
    """The same records without the registry entry: the report knows no "energy"."""
    paths = vector_records(tmp_path / "results")
    out = tmp_path / "report"
    build_report(paths, out, preset="unit")
    assert not any("energy" in name for name in _files(out))
    assert "energy" not in pd.read_csv(out / "tables" / "cells.csv").columns
    assert "Energy" not in (out / "report.md").read_text()


def test_vector_fd_and_image_fid_are_distinct_columns(tmp_path):
    paths = vector_records(tmp_path / "results")
    image_cell = {"key": "euler/steps2", "solver": "euler", "solver_kind": "ode", "steps": 2,
                  "tolerance": None, "grid": "uniform", "nfe": 2, "n_finite": 8,
                  "w2": None, "mmd": None, "fd": None, "fid": 12.5, "kid": 0.3, "kid_std": 0.01}
    paths.append(_write(tmp_path / "results" / "sweep" / "digits.json", {
        "command": "sweep", "outputs": [],
        "settings": {"mode": "model", "data_kind": "image", "dataset": "digits",
                     "method": "cfm", "seed": 0, "n_samples": 8, "n_test": 8},
        "result": {"cells": [image_cell], "selection_metric": "fid"}}))
    res = load_results(paths)
    cells = res.cells.set_index("dataset")
    vector, image = cells.loc[DATASET], cells.loc[["digits"]]
    assert vector["fd"].notna().all() and vector["fid"].isna().all()
    assert image["fid"].tolist() == [12.5] and image["fd"].isna().all()
    assert image["score"].tolist() == [12.5]  # images are ranked by FID, vectors by W2
    assert (vector["score"] == vector["w2"]).all()
    s = tables.summary(res).set_index("dataset")
    assert math.isnan(s.loc["digits", "fd_mean"]) and s.loc["digits", "fid_mean"] == 12.5
    assert s.loc[DATASET, "fd_mean"].notna().all() and s.loc[DATASET, "fid_mean"].isna().all()


def test_the_report_is_exactly_its_manifest_or_an_error(tmp_path):
    paths = vector_records(tmp_path / "results")
    out = tmp_path / "report"
    build_report(paths, out, preset="unit")
    assert _files(out) == set(load_results(paths).contents().files())
    # a figure the manifest lists but the inputs cannot give (no sample files) is an error
    for path in (tmp_path / "results" / "samples").rglob("*.npz"):
        path.unlink()
    with pytest.raises(SfbenchError, match=f"not written.*figures/samples_{DATASET}.png"):
        build_report(paths, tmp_path / "incomplete", preset="unit")
