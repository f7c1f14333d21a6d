"""The report's answers (best method x solver per NFE budget), its held-out figures, the
common-grid / native-setting cells side by side, the solver table and the protocol at the end.

Records are written in the sweep record's format with contract B's fields
(``held_out_seeds``; per cell ``native``, ``grid_options``, ``held_out``).
Their held-out values differ from the selection-seed values on purpose --
by a margin that would change which cell wins -- so a test can tell which
draws a reported figure came from. Every expected number is computed here
from the records, never written down.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sfbench.report import tables
from sfbench.report.answers import BUDGETS, CONVERGED, answers
from sfbench.report.build import build_report
from sfbench.report.results import load_results

DATASET = "blobs"
METHODS = {"cfm": 0.0, "ddpm": 0.05}  # method: offset of its W2
SEEDS = (0, 1)
HELD_OUT_SEEDS = [101, 102, 103]
N = 30
# key: (solver, steps, tolerance, grid, grid_options, native, nfe, selection-seed W2)
CELLS = {
    "euler/steps1": ("euler", 1, None, "uniform", {}, True, 1, 2.0),
    "euler/steps2": ("euler", 2, None, "uniform", {}, True, 2, 1.0),
    "euler/steps4": ("euler", 4, None, "uniform", {}, True, 4, 0.6),
    "heun/steps2": ("heun", 2, None, "uniform", {}, True, 4, 0.5),
    "euler/steps8": ("euler", 8, None, "uniform", {}, True, 8, 0.45),
    "heun/steps4": ("heun", 4, None, "uniform", {}, True, 8, 0.3),
    "edm_heun/steps4": ("edm_heun", 4, None, "uniform", {}, False, 7, 0.35),
    "edm_heun/edm/steps4": ("edm_heun", 4, None, "edm", {"rho": 7}, True, 7, 0.32),
    "dopri5/tol0.01": ("dopri5", None, 1e-2, "endpoints", {}, True, 14, 0.28),
    "dopri5/tol0.0001": ("dopri5", None, 1e-4, "endpoints", {}, True, 38, 0.25),
}
# the selection-seed winner at <= 4 NFE; on the held-out seeds it is worse than euler/steps4
PENALTY = {"heun/steps2": 0.3}


def _held_out(key: str, selection: float) -> list[float]:
    """Held-out W2 of a cell: never its selection value (+0.1, +0.2, ... and a penalty)."""
    return [selection + 0.1 * (i + 1) + PENALTY.get(key, 0.0) for i in range(len(HELD_OUT_SEEDS))]


def _write(path: Path, record: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**record, "environment": {"torch": "2.x"}}))
    return str(path)


def records(root: Path, held_out: bool = True) -> list[str]:
    rng = np.random.default_rng(0)
    data = root / "resources" / f"{DATASET}.npz"
    data.parent.mkdir(parents=True, exist_ok=True)
    np.savez(data, train=rng.normal(size=(N, 2)), test=rng.normal(size=(N, 2)))
    paths = [
        _write(root / "data.json", {
            "command": "data", "outputs": [str(data)], "result": {},
            "settings": {"dataset": DATASET, "data_seed": 0, "n_train": N, "n_test": N,
                         "dim": 2}}),
        _write(root / "reference.json", {
            "command": "reference", "outputs": [],
            "settings": {"mode": "reference", "data_kind": "vector", "dataset": DATASET,
                         "n_samples": N, "n_test": N, "reference_seeds": [7, 8]},
            "result": {"w2": 0.2, "w2_std": 0.01, "mmd": 0.0, "mmd_std": 0.0, "fd": 0.01,
                       "fd_std": 0.0, "draws": []}}),
    ]
    seeds = HELD_OUT_SEEDS if held_out else []
    for method, offset in METHODS.items():
        for seed in SEEDS:
            cells, arrays = [], {}
            for key, (solver, steps, tol, grid, options, native, nfe, w2) in CELLS.items():
                w2 = w2 + offset + 0.02 * seed
                cells.append({
                    "key": key, "solver": solver, "solver_kind": "ode", "steps": steps,
                    "tolerance": tol, "grid": grid, "grid_options": options, "native": native,
                    "options": {} if tol is None else {"rtol": tol, "atol": tol},
                    "nfe": nfe + (seed if tol is not None else 0), "sample_seconds": 0.1,
                    "eval_seconds": 0.1, "n_finite": N, "w2": w2, "mmd": w2 / 10, "fd": 2 * w2,
                    "fid": None, "kid": None, "kid_std": None,
                    "held_out": ({"w2": _held_out(key, w2), "mmd": [w2 / 10] * len(seeds),
                                  "fd": [2 * w2] * len(seeds), "fid": [None] * len(seeds),
                                  "kid": [None] * len(seeds)} if held_out else {}),
                })
                arrays[key.replace("/", "__")] = rng.normal(size=(N, 2))
            samples = root / "samples" / f"{method}{seed}.npz"
            samples.parent.mkdir(parents=True, exist_ok=True)
            np.savez(samples, **arrays, trajectory=rng.normal(size=(3, 5, 2)),
                     trajectory_t=np.linspace(0, 1, 3))
            paths.append(_write(root / "sweep" / f"{method}{seed}.json", {
                "command": "sweep", "outputs": [str(samples)],
                "settings": {"mode": "model", "data_kind": "vector", "dataset": DATASET,
                             "method": method, "seed": seed, "n_samples": N, "n_test": N,
                             "sampling_seed": 1, "held_out_seeds": seeds, "native": True,
                             "solvers": ["euler", "heun", "edm_heun"], "steps": [1, 2, 4, 8],
                             "grids": ["uniform"], "adaptive": {"dopri5": [1e-2, 1e-4]},
                             "trajectory": {"solver": "heun", "steps": 2, "n_points": 5}},
                "result": {"cells": cells, "selection_metric": "w2"}}))
    return paths


def _cells(paths: list[str]) -> pd.DataFrame:
    """Every (method, seed, cell) of the records: selection W2, held-out W2s, NFE."""
    rows = []
    for p in paths:
        r = json.loads(Path(p).read_text())
        if r["command"] != "sweep":
            continue
        for c in r["result"]["cells"]:
            rows.append({"method": r["settings"]["method"], "seed": r["settings"]["seed"],
                         "key": c["key"], "tolerance": c["tolerance"], "nfe": c["nfe"],
                         "w2": c["w2"], "held_out": c["held_out"].get("w2", [])})
    return pd.DataFrame(rows)


def _expected_choice(cells: pd.DataFrame, budget) -> pd.DataFrame:
    """Per method: the cell the rule picks at ``budget``, from the records alone."""
    per = cells.groupby(["method", "key"]).agg(w2=("w2", "mean"), nfe=("nfe", "max"),
                                               tol=("tolerance", "first")).reset_index()
    if budget == CONVERGED:
        per = per[per["tol"].notna()]
        per = per[per["tol"] == per.groupby("method")["tol"].transform("min")]
    else:
        per = per[per["nfe"] <= budget]
    return per.loc[per.groupby("method")["w2"].idxmin()].sort_values("w2")


def _pooled(cells: pd.DataFrame, method: str, key: str) -> tuple[float, float, int]:
    values = [v for vs in cells[(cells["method"] == method) & (cells["key"] == key)]["held_out"]
              for v in vs]
    return float(np.mean(values)), float(np.std(values, ddof=1)), len(values)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[str]:
    return records(tmp_path_factory.mktemp("answers"))


@pytest.fixture(scope="module")
def report(paths, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(paths, out, preset="unit")
    return out


def test_answers_pick_by_the_selection_seed_within_each_budget(paths):
    table = answers(load_results(paths), DATASET)
    cells = _cells(paths)
    for budget in (*BUDGETS, CONVERGED):
        got = table[table["budget"] == str(budget)].sort_values("rank")
        expected = _expected_choice(cells, budget)
        assert list(got["method"]) == list(expected["method"]), budget
        assert list(got["key"]) == list(expected["key"]), budget
        assert (got["nfe_max"] <= budget).all() if budget != CONVERGED else True
    # converged: the tightest tolerance, though it costs more than 32 NFE
    converged = table[table["budget"] == CONVERGED]
    assert set(converged["key"]) == {"dopri5/tol0.0001"}
    assert "dopri5/tol0.0001" not in set(table.loc[table["budget"] == "32", "key"])


def test_the_reported_figure_is_held_out_never_the_selection_draws(paths):
    """The chosen cell (by selection seed) reports its held-out mean ± std over training seeds
    x held-out seeds, even where held-out draws would have chosen another cell."""
    res = load_results(paths)
    cells = _cells(paths)
    table = answers(res, DATASET)
    row = table[(table["budget"] == "4") & (table["rank"] == 1)].iloc[0]
    selection_best = _expected_choice(cells, 4).iloc[0]
    assert row["key"] == selection_best["key"] == "heun/steps2"
    mean, std, n = _pooled(cells, row["method"], row["key"])
    assert row["w2_mean"] == pytest.approx(mean) and row["w2_std"] == pytest.approx(std)
    assert row["w2_n"] == n == len(SEEDS) * len(HELD_OUT_SEEDS)
    assert row["figure_source"] == "held-out seeds"
    assert row["selection_w2_mean"] == pytest.approx(selection_best["w2"])
    assert row["w2_mean"] != pytest.approx(row["selection_w2_mean"])
    # chosen by held-out draws another cell would have won: the selection is not held-out's
    other = _pooled(cells, row["method"], "euler/steps4")[0]
    assert other < row["w2_mean"]

    for frame in (tables.summary(res), tables.best_by_solver(res)):
        for r in frame.to_dict("records"):
            mean, std, n = _pooled(cells, r["method"], r["key"])
            selection = cells[(cells["method"] == r["method"]) & (cells["key"] == r["key"])]
            assert r["w2_mean"] == pytest.approx(mean) and r["w2_std"] == pytest.approx(std)
            assert r["w2_mean"] != pytest.approx(selection["w2"].mean())
            assert r["w2_n"] == n


def test_the_report_opens_with_the_answers_and_prints_held_out_figures(report, paths):
    md = (report / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## Answers")
    assert headings[-1] == "## Protocol"
    csv = pd.read_csv(report / "tables" / f"answers_{DATASET}.csv")
    first = csv[(csv["budget"] == "4") & (csv["rank"] == 1)].iloc[0]
    cells = _cells(paths)
    mean, std, _ = _pooled(cells, first["method"], first["key"])
    assert first["w2_mean"] == pytest.approx(mean, rel=1e-5)
    answers_part = md.split("## Headline")[0]
    row = next(line for line in answers_part.splitlines() if line.startswith("| ≤ 4 NFE"))
    from sfbench.report.sections.common import pm

    assert pm(mean, std) in row
    assert pm(first["selection_w2_mean"], first["selection_w2_std"]) not in row
    assert "noise floor" in answers_part and "W2 (held-out)" in answers_part
    assert set(csv["budget"].astype(str)) == {*map(str, BUDGETS), CONVERGED}


def test_without_held_out_seeds_the_figures_fall_back_and_say_so(tmp_path):
    paths = records(tmp_path / "results", held_out=False)
    res = load_results(paths)
    table = answers(res, DATASET)
    assert set(table["figure_source"]) == {"selection seed"}
    assert (table["w2_mean"] == table["selection_w2_mean"]).all()
    out = tmp_path / "report"
    build_report(paths, out, preset="unit")
    md = (out / "report.md").read_text()
    assert "no held-out seeds" in md.split("## Headline")[0]
    assert "W2 (selection seed)" in md
    assert "no held-out noise seeds" in md.split("## Protocol")[1]


def test_best_by_solver_shows_the_common_grid_and_the_native_cell_side_by_side(report, paths):
    b = tables.best_by_solver(load_results(paths))
    edm = b[(b["method"] == "cfm") & (b["solver"] == "edm_heun")].set_index("cells")
    assert edm.loc["common", "key"] == "edm_heun/steps4"
    assert edm.loc["native", "key"] == "edm_heun/edm/steps4"
    euler = b[(b["method"] == "cfm") & (b["solver"] == "euler")].set_index("cells")
    assert euler.loc["common", "key"] == euler.loc["native", "key"]  # one cell is both
    md = (report / "report.md").read_text()
    row = next(line for line in md.split("### cfm")[1].splitlines()
               if line.startswith(f"| {DATASET} | edm_heun |"))
    assert "edm_heun, 4 steps |" in row and "edm_heun, 4 steps, edm grid, native" in row
    saved = pd.read_csv(report / "tables" / "best_by_solver.csv")
    assert set(saved["cells"]) == {"common", "native"}


def test_the_protocol_states_seeds_and_is_collapsed_in_the_html(report):
    md = (report / "report.md").read_text()
    protocol = md.split("## Protocol")[1]
    line = next(x for x in protocol.splitlines() if x.startswith("- selection"))
    assert f"({len(SEEDS)} per method)" in line and "selection noise seed 1" in line
    assert ", ".join(map(str, HELD_OUT_SEEDS)) in line
    assert f"{len(SEEDS)} x {len(HELD_OUT_SEEDS)} values" in line
    html = (report / "report.html").read_text()
    details = html[html.index("<details>"):]
    assert "Protocol" in details[:200] and "Package versions" in details
    assert "</details>" in details and "Answers" in html[:html.index("<details>")]


def test_the_solver_table_is_the_registrys(paths, tmp_path):
    from sfbench.solvers import SOLVERS, solver_table

    out = tmp_path / "report"
    build_report(paths, out, preset="unit")
    saved = pd.read_csv(out / "tables" / "solvers.csv")
    rows = solver_table()
    assert list(saved["solver"]) == [r["solver"] for r in rows] == list(SOLVERS)
    assert list(saved["variable"]) == [r["variable"] for r in rows]
    assert list(saved["native"]) == [r["native"] for r in rows]
    swept = {c for p in paths for c in _swept_solvers(p)}
    assert list(saved["swept"]) == [r["solver"] in swept for r in rows]
    md = (out / "report.md").read_text()
    assert SOLVERS["edm_heun"].native.describe() in md and "| steps in |" in md
    assert "`ddim`" in md and "`edm_heun`" in md  # the naming note: diffusers' Euler / Heun


def _swept_solvers(path) -> set[str]:
    import json

    record = json.loads(Path(path).read_text())
    return {c["solver"] for c in record["result"].get("cells", [])}
