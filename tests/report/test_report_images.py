"""The report's image part from hand-made digits records: FID selection, the Gaussian
baseline verdict, the bits/dim table, FID-vs-NFE plots and per-method sample grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sfbench.report import tables
from sfbench.report.browser import check_in_chromium, find_chromium
from sfbench.report.build import build_report
from sfbench.report.manifest import ReportContents
from sfbench.report.results import load_results

METHODS = ("cfm", "ddpm")
SEEDS = (0, 1)
BASELINE_FID, FLOOR_FID = 5.0, 1.0
# FID per cell and seed: seed 0 prefers euler/4, seed 1 the edm grid, the mean euler/4.
FID = {
    ("euler", 4, None, "uniform"): (2.0, 3.0),
    ("euler", 4, None, "edm"): (2.6, 2.8),
    ("dopri5", None, 1e-3, "endpoints"): (4.0, 4.0),
}
OFFSET = {"cfm": 0.0, "ddpm": 4.0}  # ddpm's best mean FID, 6.5, is above the baseline


def _key(solver, steps, tol, grid):
    if tol is not None:
        return f"{solver}/tol{tol:g}"
    return f"{solver}/steps{steps}" if grid == "uniform" else f"{solver}/{grid}/steps{steps}"


def _write(path: Path, record: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "environment": {"torch": "2.x"}}))
    return str(path)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    data = root / "digits.npz"
    np.savez(data, train=rng.uniform(-1, 1, (40, 1, 8, 8)), test=rng.uniform(-1, 1, (30, 1, 8, 8)))
    protocol = {"dataset": "digits", "extractor": "digits_classifier",
                "extractor_sha256": "ab" * 32, "features": "penultimate", "n_samples": 30,
                "n_reference": 30,
                "reference_split": "test", "sample_preprocessing": "round to 17 levels",
                "resize": None, "kid_subsets": 5, "kid_subset_size": 30, "kid_kernel": "cubic",
                "classifier_test_accuracy": 0.98}
    paths = [
        _write(root / "data.json", {
            "command": "data", "outputs": [str(data)], "result": {},
            "settings": {"dataset": "digits", "data_seed": 0, "n_train": 40, "n_test": 30,
                         "dim": 64}}),
        _write(root / "reference.json", {
            "command": "reference", "outputs": [],
            "settings": {"mode": "reference", "data_kind": "image", "dataset": "digits",
                         "n_samples": 30, "n_test": 30, "reference_seeds": [7, 8],
                         "fid_protocol": protocol},
            "result": {"w2": None, "mmd": None, "fd": None, "fid": FLOOR_FID, "fid_std": 0.1,
                       "kid": 0.0, "kid_std": 0.0, "baseline_fid": BASELINE_FID,
                       "baseline_fid_std": 0.2, "baseline_kid": 0.3, "baseline_kid_std": 0.01}}),
        _write(root / "classifier.json", {
            "command": "classifier", "outputs": [],
            "settings": {"seed": 0, "steps": 1500, "dataset": "digits"},
            "result": {"sha256": "ab" * 32, "test_accuracy": 0.98, "n_test": 30}}),
    ]
    for method in METHODS:
        for seed in SEEDS:
            tag = f"digits/{method}/seed{seed}"
            samples = root / "samples" / f"{tag}.npz"
            samples.parent.mkdir(parents=True, exist_ok=True)
            np.savez(samples, **{_key(*c).replace("/", "__"): rng.uniform(-1, 1, (30, 64))
                                 for c in FID})
            cells = [
                {"key": _key(*c), "solver": c[0], "solver_kind": "ode", "steps": c[1],
                 "tolerance": c[2], "grid": c[3], "nfe": c[1] or 20, "n_finite": 30,
                 "w2": None, "mmd": None, "fd": None, "fid": f[seed] + OFFSET[method],
                 "kid": (f[seed] + OFFSET[method]) / 100, "kid_std": 0.001}
                for c, f in FID.items()
            ]
            paths.append(_write(root / "sweep" / f"{tag}.json", {
                "command": "sweep", "outputs": [str(samples)],
                "settings": {"mode": "model", "data_kind": "image", "dataset": "digits",
                             "method": method, "seed": seed, "n_samples": 30, "n_test": 30,
                             "sampling_seed": 1, "solvers": ["euler"], "steps": [4],
                             "grids": ["uniform", "edm"], "adaptive": {"dopri5": [1e-3]},
                             "trajectory": None, "fid_protocol": protocol},
                "result": {"cells": cells, "selection_metric": "fid"}}))
            paths.append(_write(root / "train" / f"{tag}.json", {
                "command": "train", "outputs": [],
                "settings": {"dataset": "digits", "method": method, "seed": seed, "steps": 600,
                             "batch_size": 128, "lr": 2e-3, "ema_decay": 0.995,
                             "network": {"kind": "unet"}},
                "result": {"final_loss": 1.0, "wall_seconds": 30.0}}))
            nll = {"nll_nats": 100.0, "nll_bits_per_dim": 2.0 + seed + OFFSET[method] / 10,
                   "nll_bits_per_dim_stderr": 0.02, "nll_nfe": 90}
            if method == "ddpm":
                nll.update(vlb_bits_per_dim_mean=4.0 + seed, vlb_bits_per_dim_stderr=0.03)
            paths.append(_write(root / "nll" / f"{tag}.json", {
                "command": "evaluate", "outputs": [],
                "settings": {"dataset": "digits", "method": method, "n_test": 30,
                             "model": {"seed": seed},
                             "nll": {"rtol": 1e-3, "atol": 1e-3, "t_start": 0.0, "t_end": 0.999,
                                     "divergence": "hutchinson", "n_probes": 1,
                                     "num_points": 30, "nfe": 90}},
                "result": nll}))
    return paths


@pytest.fixture(scope="module")
def report(image_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(image_files, out, preset="unit")
    return out


def test_image_best_setting_is_chosen_by_mean_fid(image_files):
    res = load_results(image_files)
    assert res.image_datasets == ["digits"]
    s = tables.summary(res).set_index("method")
    assert s.loc["cfm", "best_setting"] == "euler, 4 steps"
    assert s.loc["cfm", "fid_mean"] == pytest.approx(2.5)
    assert np.isnan(s.loc["cfm", "w2_mean"])
    assert s.loc["cfm", "kid_mean"] == pytest.approx(0.025)
    assert s.loc["ddpm", "vlb_bits_per_dim_mean"] == pytest.approx(4.5)
    # the edm cell is its own setting, labelled with its grid
    labels = set(tables.setting_means(res)["setting"])
    assert {"euler, 4 steps", "euler, 4 steps, edm grid", "dopri5, tol 1e-03"} == labels
    p = tables.pivot(res, "cfm", "fid")
    assert list(p.columns) == ["4", "4 edm", "tol 1e-03"]
    assert p.loc[("digits", "euler"), "4 edm"] == pytest.approx(2.7)


def test_baseline_table_says_which_methods_beat_the_gaussian(image_files):
    b = tables.baseline(load_results(image_files)).set_index("method")
    assert b.loc["cfm", "below_baseline"] and not b.loc["ddpm", "below_baseline"]
    assert b.loc["ddpm", "fid_mean"] == pytest.approx(6.5)
    assert b.loc["cfm", "baseline_fid"] == BASELINE_FID
    assert b.loc["cfm", "reference_fid"] == FLOOR_FID
    assert b.loc["cfm", "fid_baseline_ratio"] == pytest.approx(2.5 / BASELINE_FID)


def test_bits_table_carries_tolerances_and_truncation(image_files):
    b = tables.bits(load_results(image_files)).set_index("method")
    assert b.loc["cfm", "nll_bits_per_dim_mean"] == pytest.approx(2.5)
    assert b.loc["cfm", "nll_bits_per_dim_std"] == pytest.approx(np.std([2.0, 3.0], ddof=1))
    assert np.isnan(b.loc["cfm", "vlb_bits_per_dim_mean"])
    assert b.loc["ddpm", "vlb_bits_per_dim_mean"] == pytest.approx(4.5)
    assert (b.loc["ddpm", "rtol"], b.loc["ddpm", "t_end"]) == (1e-3, 0.999)
    assert b.loc["ddpm", "divergence"] == "hutchinson"


def test_image_report_sections_and_files(report):
    names = {p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file()}
    assert {"tables/baseline.csv", "tables/bits.csv", "figures/fid_vs_nfe_digits.png",
            "figures/kid_vs_nfe_digits.png", "figures/samples_digits_cfm.png",
            "figures/samples_digits_ddpm.png"} <= names
    assert not any("w2_vs_nfe" in n or "trajectories" in n for n in names)
    md = (report / "report.md").read_text()
    assert "## FID against the Gaussian baseline" in md
    assert "`digits` cfm: best FID 2.5 (euler, 4 steps) is below the baseline 5" in md
    assert "`digits` ddpm: best FID 6.5 (euler, 4 steps) is NOT below the baseline 5" in md
    assert "1 of 2 method x dataset pairs are below it" in md
    assert "classifier test accuracy 0.9800" in md and "on the uniform and edm time grid" in md
    assert "VLB (bits/dim)" in md and "– ±" not in md
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["digits"]["cfm"]["fid"] == pytest.approx(2.5)
    assert "w2" not in metrics["digits"]["cfm"]
    assert metrics["digits"]["reference"]["baseline_fid"] == BASELINE_FID
    baseline = pd.read_csv(report / "tables" / "baseline.csv")
    assert list(baseline["below_baseline"]) == [True, False]


def test_image_report_writes_exactly_its_manifest(report):
    names = {p.relative_to(report).as_posix() for p in report.rglob("*") if p.is_file()}
    assert names == set(ReportContents((), image_datasets=("digits",), methods=METHODS,
                                       image_methods=METHODS).files())


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")
def test_image_report_renders_in_chromium(report):
    result = check_in_chromium(report / "report.html")
    assert len(result["images"]) == len(list((report / "figures").glob("*.png"))) == 4
    assert all(img["ok"] and img["width"] > 100 for img in result["images"]), result["images"]
    empty = [t for t in result["tables"] if t["rows"] == 0 or t["filled"] == 0]
    assert not empty, empty


def test_image_tile_lays_out_samples_row_by_row():
    from sfbench.report.plots import image_tile

    x = np.stack([np.full((1, 2, 3), v) for v in np.linspace(-1, 1, 5)]).reshape(5, 6)
    x[4, 0] = np.nan  # a non-finite pixel shows as mid-grey, never as an error
    tile = image_tile(x, (1, 2, 3), side=2)
    assert tile.shape == (2 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_allclose(tile[0:2, 0:3], 0.0)  # sample 0: -1 -> black
    np.testing.assert_allclose(tile[0:2, 4:7], 0.25)  # sample 1, right of it
    np.testing.assert_allclose(tile[3:5, 0:3], 0.5)  # sample 2 starts the second row
    assert (tile[2, :] == 0.5).all()  # the separating row
