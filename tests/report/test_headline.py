"""The report's headline table: method x dataset, best score with its spread and NFE."""

from __future__ import annotations

import pandas as pd

from sfbench.report.tables import headline


def _row(dataset, kind, method, score, std, nfe, seeds, **extra):
    metric = "w2" if kind == "vector" else "fid"
    return {"dataset": dataset, "data_kind": kind, "method": method, f"{metric}_mean": score,
            f"{metric}_std": std, "nfe_mean": nfe, "n_seeds": seeds, **extra}


def test_headline_has_a_cell_per_method_and_dataset_and_the_yardsticks():
    summary = pd.DataFrame([
        _row("moons", "vector", "ddpm", 0.188, 0.012, 64, 3, reference_w2=0.222),
        _row("moons", "vector", "cfm", 0.172, 0.0076, 64, 3, reference_w2=0.222),
        _row("digits", "image", "cfm", 2.67, 0.0, 38, 1, baseline_fid=11.4),
    ])
    table = headline(summary).set_index("method")
    assert list(table.columns) == ["moons (W2)", "digits (FID)"]
    assert table.loc["ddpm", "moons (W2)"] == "0.188 ± 0.012 @ 64 NFE"
    # one seed: no spread to show, and no "± 0" that would read as a measured zero
    assert table.loc["cfm", "digits (FID)"] == "2.67 (1 seed) @ 38 NFE"
    assert table.loc["ddpm", "digits (FID)"] == "–"  # not trained on digits
    floor = table.loc["noise floor (W2) / Gaussian baseline (FID)"]
    assert floor["moons (W2)"] == "0.222" and floor["digits (FID)"] == "11.4"
