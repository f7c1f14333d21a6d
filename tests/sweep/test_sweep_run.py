"""run_sweep on the exact model: paired samples, every registered metric in every row, records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sfbench.data import get_dataset
from sfbench.eval.metrics import METRICS, Metric, metric_keys
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import get_method
from sfbench.sampling import generate
from sfbench.sweep.cells import npz_key
from sfbench.sweep.config import SweepConfig
from sfbench.sweep.record import SweepRecord
from sfbench.sweep.run import run_sweep

CONFIG = {"solvers": ["euler", "heun"], "steps": [1, 16], "adaptive": {"dopri5": [1e-3]},
          "n_samples": 200, "seed": 3, "trajectory": {"solver": "heun", "steps": 16,
                                                      "n_points": 10}}


@pytest.fixture(scope="module")
def oracle():
    return GaussianMixtureOracle(get_dataset("8gaussians").mixture,
                                 get_method("rectified_flow").schedule())


@pytest.fixture(scope="module")
def test_points():
    return get_dataset("8gaussians").sample(300, 0, "test")


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo), a metric the registry lacks."""
    def mean_dist(a, b):
        return float(np.linalg.norm(a[:, None] - b[None], axis=-1).mean())
    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def test_every_cell_is_generates_own_samples_and_scored(oracle, test_points):
    config = SweepConfig.from_dict(CONFIG)
    seen = []
    record, arrays = run_sweep(oracle, test_points, config,
                               on_cell=lambda cell, row: seen.append((cell.key, row.key)),
                               model_info={"source": "oracle", "method": "rectified_flow",
                                           "dataset": "8gaussians"}, data="d.npz")
    keys = [c.key for c in record.cells]
    assert keys == ["euler/steps1", "euler/steps16", "heun/steps1", "heun/steps16",
                    "dopri5/tol0.001"]
    assert seen == [(k, k) for k in keys]  # on_cell after every cell, in order
    # the stored samples are what generate gives for that cell, from the sweep's seed
    again = generate(oracle, "heun", 16, 200, 3).samples.numpy()
    np.testing.assert_array_equal(arrays[npz_key("heun/steps16")], again.astype(np.float32))
    # paired noise: the trajectory's end is the first samples of its cell
    np.testing.assert_allclose(arrays["trajectory"][-1], arrays["heun__steps16"][:10], atol=1e-5)
    by_key = {c.key: c for c in record.cells}
    assert by_key["heun/steps16"].nfe == 32
    for c in record.cells:
        assert set(c.metrics) == set(metric_keys())
        assert c.metrics["fid"] is None and c.metrics["kid"] is None  # image-only metrics
        assert all(math.isfinite(c.metrics[k]) for k in ("w2", "mmd", "fd"))
    # the exact model: a fine solver beats one Euler step, and is chosen
    assert by_key["heun/steps16"].metrics["w2"] < 0.5 * by_key["euler/steps1"].metrics["w2"]
    assert record.best.key != "euler/steps1"

    out = record.to_json()
    assert out["settings"]["data_kind"] == "vector" and out["settings"]["n_samples"] == 200
    assert out["result"]["selection_metric"] == "w2"
    assert out["result"]["best_w2"] == min(c.metrics["w2"] for c in record.cells)
    assert {f"best_{m}" for m in METRICS} <= set(out["result"])
    # the record survives JSON and reads back to the same record
    text = json.dumps(out)
    assert SweepRecord.from_json(json.loads(text)).to_json() == json.loads(text)


def test_a_registered_metric_appears_in_every_cell_row(oracle, test_points, monkeypatch):
    monkeypatch.setitem(METRICS, "energy", Metric(
        "energy", "Energy", "energy distance", frozenset({"vector"}),
        lambda test: (lambda x: {"energy": energy_distance(x, test)}),
    ))
    config = SweepConfig.from_dict({"solvers": ["euler"], "steps": [1, 8], "n_samples": 100,
                                    "seed": 1})
    record, arrays = run_sweep(oracle, test_points, config)
    for cell in record.cells:
        expected = energy_distance(arrays[npz_key(cell.key)], test_points)
        assert cell.metrics["energy"] == pytest.approx(expected, rel=1e-12)
    rows = record.to_json()["result"]["cells"]
    assert all("energy" in row for row in rows)
    assert rows[1]["energy"] < rows[0]["energy"]  # 8 Euler steps are closer than one
    assert "best_energy" in record.to_json()["result"]


def test_a_non_finite_cell_is_nan_and_never_the_best(oracle, test_points):
    calls = []

    def metrics(samples):  # a stand-in scorer: the first cell "diverged"
        calls.append(samples.shape)
        return {"w2": math.nan if len(calls) == 1 else float(len(calls))}

    config = SweepConfig.from_dict({"solvers": ["euler"], "steps": [1, 2, 4], "n_samples": 20})
    record, _ = run_sweep(oracle, test_points, config, metrics=metrics)
    assert calls == [(20, 2)] * 3
    assert record.best.key == "euler/steps2"
    assert record.to_json()["result"]["n_cells_finite"] == 2
