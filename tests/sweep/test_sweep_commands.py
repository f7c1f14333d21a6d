"""The thin commands over the sweep library, run in-process: sample --grid, reference, sweep."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sfbench.cli import main
from sfbench.data import get_dataset
from sfbench.eval.metrics import METRICS, metrics_for
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import get_method
from sfbench.sampling import generate

ORACLE = ["--oracle", "--method", "ddpm", "--dataset", "8gaussians"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    assert main(["data", "--dataset", "8gaussians", "--n-train", "50", "--n-test", "200",
                 "--out", str(root / "d.npz"), "--result", str(root / "d.json")]) == 0
    return root / "d.npz"


def test_sample_samples_on_the_named_grid(tmp_path):
    assert main(["sample", *ORACLE, "--solver", "euler", "--steps", "4", "--grid", "edm",
                 "--grid-option", "rho=5", "--n-samples", "30", "--seed", "2",
                 "--out", str(tmp_path / "s.npz"), "--result", str(tmp_path / "s.json")]) == 0
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["settings"]["grid"] == "edm"
    assert record["settings"]["grid_options"]["rho"] == 5
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture,
                                   get_method("ddpm").schedule())
    edm = generate(oracle, "euler", 4, 30, 2, grid="edm", grid_options={"rho": 5}).samples
    uniform = generate(oracle, "euler", 4, 30, 2).samples
    with np.load(tmp_path / "s.npz") as z:
        np.testing.assert_array_equal(z["samples"], edm.numpy())
        assert not np.allclose(z["samples"], uniform.numpy())


def test_reference_keys_every_metric_of_the_registry(data, tmp_path):
    assert main(["reference", "--dataset", "8gaussians", "--data", str(data), "--seed", "50",
                 "--draws", "2", "--n-samples", "100", "--result", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["command"] == "reference" and r["settings"]["data_kind"] == "vector"
    assert r["settings"]["n_samples"] == 100 and r["settings"]["n_test"] == 200
    vector = {m.name for m in metrics_for("vector")}
    for name in METRICS:
        if name in vector:
            values = [d[name] for d in r["result"]["draws"]]
            assert r["result"][name] == pytest.approx(np.mean(values))
            assert r["result"][f"{name}_std"] == pytest.approx(np.std(values, ddof=1))
        else:
            assert r["result"][name] is None and r["result"][f"{name}_std"] is None
    assert [d["data_seed"] for d in r["result"]["draws"]] == [50, 51]


def test_sweep_config_without_nll_section_refuses_an_nll_result(data, tmp_path):
    (tmp_path / "s.yaml").write_text("solvers: [euler]\nsteps: [2]\n")
    code = main(["sweep", *ORACLE, "--data", str(data), "--config", str(tmp_path / "s.yaml"),
                 "--out", str(tmp_path / "s.npz"), "--nll-result", str(tmp_path / "n.json"),
                 "--result", str(tmp_path / "s.json")])
    assert code == 1 and not (tmp_path / "s.json").exists()


def test_sweep_cells_are_child_runs_with_every_metric(data, tmp_path, monkeypatch):
    """args.log_child gets one child per cell, named by its key; ``nll`` after them."""
    import sfbench.cli as cli

    children = []
    monkeypatch.setattr(cli, "_no_child_run", lambda *a: children.append(a))
    (tmp_path / "s.yaml").write_text(
        "solvers: [euler, ddim]\nsteps: [2]\nn_samples: 40\noptions: {ddim: {eta: 0.5}}\n"
        "nll: {n_points: 10, rtol: 1.0e-3, atol: 1.0e-3}\n")
    assert main(["sweep", *ORACLE, "--data", str(data), "--config", str(tmp_path / "s.yaml"),
                 "--out", str(tmp_path / "s.npz"), "--nll-result", str(tmp_path / "n.json"),
                 "--result", str(tmp_path / "s.json")]) == 0
    assert [c[0] for c in children] == ["euler/steps2", "ddim[eta=0.5]/steps2", "nll"]
    name, settings, result = children[1]
    assert settings["options"] == {"eta": 0.5} and settings["n_samples"] == 40
    assert {"w2", "mmd", "fd", "nfe"} <= set(result) and "fid" not in result  # None dropped
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["result"]["cells"][1]["options"] == {"eta": 0.5}
    assert record["settings"]["solver_options"] == {"ddim": {"eta": 0.5}}
    assert json.loads((tmp_path / "n.json").read_text())["settings"]["n_test"] == 10


def test_sweep_records_held_out_draws_by_hand(data, tmp_path, monkeypatch):
    """--held-out-seeds: rows hold one value per held-out seed, the result the best cell's
    held-out figure, each child run its held-out mean; only the selection draws are stored."""
    import sfbench.cli as cli

    children = []
    monkeypatch.setattr(cli, "_no_child_run", lambda *a: children.append(a))
    assert main(["sweep", *ORACLE, "--data", str(data), "--solvers", "euler", "--steps", "1",
                 "4", "--n-samples", "60", "--seed", "1", "--held-out-seeds", "8", "9",
                 "--out", str(tmp_path / "s.npz"), "--result", str(tmp_path / "s.json")]) == 0
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["settings"]["held_out_seeds"] == [8, 9]
    assert record["settings"]["sampling_seed"] == 1
    rows = {c["key"]: c for c in record["result"]["cells"]}
    assert all(len(r["held_out"]["w2"]) == 2 for r in rows.values())
    best = rows[record["result"]["best_key"]]
    assert record["result"]["best_held_out"]["w2"]["mean"] == pytest.approx(
        np.mean(best["held_out"]["w2"]))
    assert best["held_out"]["w2"][0] != best["w2"]  # another draw, another value
    assert children[0][2]["held_out_w2"] == pytest.approx(
        np.mean(rows["euler/steps1"]["held_out"]["w2"]))
    with np.load(tmp_path / "s.npz") as z:
        assert sorted(z.files) == ["euler__steps1", "euler__steps4"]
