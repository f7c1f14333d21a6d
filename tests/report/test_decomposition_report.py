"""Report pieces of the error decomposition: tidy rows, seed means, the plot, the flow table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sfbench.errors import SfbenchError
from sfbench.report.decomposition import (
    COLUMNS,
    decomposition_means,
    decomposition_plot,
    decomposition_table,
    flow_table,
    load_decompose_records,
)


def record(method, seed, total, exact, flow, oracle=True):
    cells = [
        {"solver": "euler", "solver_kind": "ode", "steps": n, "nfe": n, "total_w2": total / n,
         "discretization_w2": 2.0 / n if oracle else None,
         "discretization_rmse": 1.0 / n if oracle else None,
         "model_discretization_rmse": 0.5 / n}
        for n in (1, 4)
    ]
    return {
        "command": "decompose",
        "settings": {"dataset": "8gaussians", "method": method, "seed": seed},
        "result": {"cells": cells, "exact_flow_w2": exact, "oracle_exact_w2": 0.4 if oracle
                   else None, "floor_w2": 0.4, "flow": flow},
    }


RECORDS = [
    record("rectified_flow", 0, 3.0, 0.5, {"straightness": 2.0, "path_energy_ratio": 1.7,
                                           "normalized_path_energy": 0.7}),
    record("rectified_flow", 1, 5.0, 0.7, {"straightness": 1.0, "path_energy_ratio": 1.5,
                                           "normalized_path_energy": 0.5}),
    record("reflow", 0, 0.5, 0.45, {"straightness": 0.01, "path_energy_ratio": 1.0,
                                    "normalized_path_energy": 0.01},
           oracle=False),
    record("distill", 0, 0.5, 0.5, {"straightness": 0.0, "path_energy_ratio": 1.0,
                                    "by_construction": True}, oracle=False),
]


def test_tidy_rows_and_means_over_seeds():
    table = decomposition_table(RECORDS)
    assert list(table.columns) == COLUMNS and len(table) == 8
    row = table[(table["method"] == "rectified_flow") & (table["seed"] == 1)
                & (table["steps"] == 4)].iloc[0]
    assert (row["total_w2"], row["discretization"], row["exact_flow"], row["floor"]) == (
        1.25, 0.5, 0.7, 0.4)
    assert math.isnan(table[table["method"] == "reflow"]["discretization"].iloc[0])
    means = decomposition_means(table)
    rf1 = means[(means["method"] == "rectified_flow") & (means["steps"] == 1)].iloc[0]
    assert rf1["total_w2_mean"] == pytest.approx(4.0) and rf1["n_seeds"] == 2
    assert rf1["total_w2_std"] == pytest.approx(2 ** 0.5)  # sample std of 3 and 5
    assert rf1["exact_flow_mean"] == pytest.approx(0.6)
    png = decomposition_plot(means, "8gaussians")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SfbenchError, match="no decomposition"):
        decomposition_plot(means, "moons")


def test_flow_table_orders_methods_by_straightness():
    table = flow_table(RECORDS)
    assert list(table["method"]) == ["distill", "reflow", "rectified_flow"]
    rf = table[table["method"] == "rectified_flow"].iloc[0]
    assert rf["straightness_mean"] == pytest.approx(1.5) and rf["n_seeds"] == 2
    assert rf["path_energy_ratio_mean"] == pytest.approx(1.6)
    assert rf["normalized_path_energy_mean"] == pytest.approx(0.6)  # Tong et al.'s, apart
    distill = table[table["method"] == "distill"].iloc[0]
    assert distill["by_construction"] and np.isnan(distill["normalized_path_energy_mean"])


def test_loading_refuses_other_records(tmp_path):
    good, bad = tmp_path / "d.json", tmp_path / "s.json"
    good.write_text(json.dumps(RECORDS[0]))
    bad.write_text(json.dumps({**RECORDS[0], "command": "sweep"}))
    assert load_decompose_records([good])[0]["settings"]["method"] == "rectified_flow"
    with pytest.raises(SfbenchError, match="not decompose"):
        load_decompose_records([good, bad])
