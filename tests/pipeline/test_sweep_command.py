"""`sfbench sweep`: one process samples every solver x step count and evaluates each cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def sfbench(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items()
            if k not in ("SFBENCH_MLFLOW_EXPERIMENT", "MLFLOW_TRACKING_URI")}
    full.update(env or {}, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "sfbench", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    proc = sfbench("data", "--dataset", "8gaussians", "--n-train", "100", "--n-test", "300",
                   "--out", "d.npz", "--result", "d.json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "d.npz"


def test_oracle_sweep_writes_every_cell(data, tmp_path):
    proc = sfbench(
        "sweep", "--oracle", "--method", "rectified_flow", "--dataset", "8gaussians",
        "--data", str(data), "--solvers", "euler", "heun", "--steps", "1", "32",
        "--adaptive", "dopri5:1e-3,1e-5", "--n-samples", "300", "--seed", "3",
        "--trajectory", "heun:32:20", "--out", "s.npz", "--plot", "p.png", "--result", "s.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "s.json").read_text())
    cells = record["result"]["cells"]
    assert [c["key"] for c in cells] == [
        "euler/steps1", "euler/steps32", "heun/steps1", "heun/steps32",
        "dopri5/tol0.001", "dopri5/tol1e-05",
    ]
    by_key = {c["key"]: c for c in cells}
    assert by_key["heun/steps32"]["nfe"] == 64  # counted, two evaluations per Heun step
    assert by_key["dopri5/tol1e-05"]["options"] == {"rtol": 1e-5, "atol": 1e-5}
    assert all(np.isfinite([c["w2"], c["mmd"], c["fd"]]).all() for c in cells)
    assert all(c["fid"] is None and c["kid"] is None for c in cells)  # image metrics
    # The exact model: a fine solver is far better than one Euler step.
    assert by_key["heun/steps32"]["w2"] < 0.5 * by_key["euler/steps1"]["w2"]
    assert record["result"]["best_key"] in by_key
    assert record["settings"]["n_samples"] == 300 and record["settings"]["n_test"] == 300
    with np.load(tmp_path / "s.npz") as z:
        assert set(z.files) == {c["key"].replace("/", "__") for c in cells} | {
            "trajectory", "trajectory_t"}
        assert z["heun__steps32"].shape == (300, 2)
        assert z["trajectory"].shape == (33, 20, 2)
        # Paired noise: the trajectory's end is the cell's samples for the same indices.
        np.testing.assert_allclose(z["trajectory"][-1], z["heun__steps32"][:20], atol=1e-5)
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_sweep_measures_the_flows_straightness_on_its_own_starting_noise(data, tmp_path):
    from sfbench.data import get_dataset
    from sfbench.eval.oracle import GaussianMixtureOracle
    from sfbench.eval.straightness import straightness
    from sfbench.methods import get_method

    proc = sfbench(
        "sweep", "--oracle", "--method", "rectified_flow", "--dataset", "8gaussians",
        "--data", str(data), "--solvers", "euler", "--steps", "4", "--n-samples", "300",
        "--seed", "3", "--straightness", "200:40", "--out", "s.npz", "--result", "s.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    flow = json.loads((tmp_path / "s.json").read_text())["result"]["flow"]
    assert flow["n_samples"] == 200 and flow["straightness_steps"] == 40
    assert flow["straightness_solver"] == "rk4"
    assert flow["seed"] == 3 and not flow["by_construction"]  # the sweep's own noise
    # The same measurement made in this process, from the sweep's seed.
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture,
                                   get_method("rectified_flow").schedule())
    direct = straightness(oracle, 200, 3, solver="rk4", steps=40)
    assert flow["straightness"] == pytest.approx(direct.straightness, rel=1e-4)
    # Independent coupling: the oracle's paths curve (straight would be 0, energy 1).
    assert flow["straightness"] > 0.1 and flow["path_energy_ratio"] > 1.05


def test_reference_measures_the_noise_floor(data, tmp_path):
    from sfbench.data import get_dataset
    from sfbench.eval.distances import wasserstein2
    from sfbench.io import load_array

    proc = sfbench("reference", "--dataset", "8gaussians", "--data", str(data),
                   "--seed", "777", "--result", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["command"] == "reference" and r["settings"]["mode"] == "reference"
    assert r["settings"]["reference_seeds"] == [777, 778, 779]
    assert len(r["result"]["draws"]) == 3
    assert 0 < r["result"]["w2"] < 1.0 and r["result"]["w2_std"] > 0
    assert r["result"]["fd"] > 0 and r["result"]["fid"] is None
    # a draw is the dataset's own points at that data seed, scored against the test split
    test = load_array(str(data), "test")
    x = get_dataset("8gaussians").sample(300, 778, "test")
    assert r["result"]["draws"][1]["w2"] == pytest.approx(wasserstein2(x, test), rel=1e-9)


def test_sweep_reference_points_to_the_reference_command(data, tmp_path):
    proc = sfbench("sweep", "--reference", "--dataset", "8gaussians", "--data", str(data),
                   "--result", "r.json", cwd=tmp_path)
    assert proc.returncode != 0 and "sfbench reference" in proc.stderr


def test_config_file_and_flags_give_the_same_sweep(data, tmp_path):
    """--config SWEEP.yaml is the flags' settings as one file; both at once is an error."""
    (tmp_path / "sweep.yaml").write_text(
        "solvers: [euler]\nsteps: [2, 4]\nadaptive: {dopri5: [1.0e-3]}\nn_samples: 60\n"
        "seed: 9\nstraightness: {n_points: 20, steps: 10}\n")
    oracle = ["--oracle", "--method", "cfm", "--dataset", "8gaussians", "--data", str(data)]
    by_file = sfbench("sweep", *oracle, "--config", "sweep.yaml", "--out", "a.npz",
                      "--result", "a.json", cwd=tmp_path)
    assert by_file.returncode == 0, by_file.stderr
    by_flags = sfbench("sweep", *oracle, "--solvers", "euler", "--steps", "2", "4",
                       "--adaptive", "dopri5:1e-3", "--n-samples", "60", "--seed", "9",
                       "--straightness", "20:10", "--out", "b.npz", "--result", "b.json",
                       cwd=tmp_path)
    assert by_flags.returncode == 0, by_flags.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["settings"] == b["settings"]
    keys = ("key", "nfe", "w2", "mmd", "fd")
    assert [[c[k] for k in keys] for c in a["result"]["cells"]] == [
        [c[k] for k in keys] for c in b["result"]["cells"]]
    assert a["result"]["flow"]["straightness"] == b["result"]["flow"]["straightness"]
    both = sfbench("sweep", *oracle, "--config", "sweep.yaml", "--steps", "8", "--out", "c.npz",
                   "--result", "c.json", cwd=tmp_path)
    assert both.returncode != 0 and "not both: --steps" in both.stderr
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--solvers", "dopri5", "--steps", "4"], "'dopri5' is adaptive"),
        (["--adaptive", "euler:1e-3"], "'euler' is fixed-step"),
        (["--solvers", "eulr", "--steps", "4"], "unknown solver 'eulr'"),
        (["--solvers", "euler"], "solvers need step counts"),
        ([], "nothing to sample"),
        (["--solvers", "euler", "--steps", "4", "--straightness", "0:50"],
         "expected N_POINTS:STEPS"),
    ],
)
def test_bad_sweeps_fail_before_sampling_and_write_nothing(data, tmp_path, args, message):
    proc = sfbench("sweep", "--oracle", "--method", "cfm", "--dataset", "8gaussians",
                   "--data", str(data), *args, "--out", "s.npz", "--result", "s.json",
                   cwd=tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "s.npz").exists()


def test_tracked_sweep_logs_each_cell_as_a_nested_run(data, tmp_path):
    from mlflow import MlflowClient

    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    args = ("sweep", "--oracle", "--method", "cfm", "--dataset", "8gaussians",
            "--data", str(data), "--solvers", "euler", "--steps", "2", "8", "--n-samples", "100",
            "--out", "s.npz", "--result", "s.json", "--mlflow-experiment", "e",
            "--job-key", "sweep/oracle")
    for _ in range(2):  # a rerun reuses every run
        proc = sfbench(*args, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id])
    keys = sorted(r.data.tags["job_key"] for r in runs)
    assert keys == ["sweep/oracle", "sweep/oracle/euler/steps2", "sweep/oracle/euler/steps8"]
    parent = next(r for r in runs if r.data.tags["job_key"] == "sweep/oracle")
    cell = next(r for r in runs if r.data.tags["job_key"].endswith("steps8"))
    assert cell.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert cell.data.tags["solver"] == "euler" and cell.data.tags["steps"] == "8"
    assert cell.data.metrics["nfe"] == 8 and "w2" in cell.data.metrics
    assert parent.data.metrics["best_w2"] == pytest.approx(
        min(r.data.metrics["w2"] for r in runs if r is not parent))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"s.json", "s.npz"} <= artifacts


def test_sweep_varies_the_time_grid(data, tmp_path):
    """--grids: each fixed-step solver on each grid, keyed by grid off uniform; the
    trajectory's times are the grid it was sampled on, not a uniform one."""
    from sfbench.data import get_dataset
    from sfbench.eval.oracle import GaussianMixtureOracle
    from sfbench.methods import get_method
    from sfbench.sampling import generate
    from sfbench.solvers import get_grid

    proc = sfbench(
        "sweep", "--oracle", "--method", "ddpm", "--dataset", "8gaussians", "--data", str(data),
        "--solvers", "euler", "--steps", "4", "--grids", "edm", "uniform",
        "--adaptive", "dopri5:1e-2", "--n-samples", "50", "--seed", "5",
        "--trajectory", "euler:4:5", "--out", "s.npz", "--result", "s.json", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "s.json").read_text())
    cells = {c["key"]: c for c in record["result"]["cells"]}
    assert list(cells) == ["euler/edm/steps4", "euler/steps4", "dopri5/tol0.01"]
    assert [c["grid"] for c in cells.values()] == ["edm", "uniform", "endpoints"]
    assert record["settings"]["grids"] == ["edm", "uniform"]
    assert record["settings"]["trajectory"]["grid"] == "edm"
    schedule = get_method("ddpm").schedule()
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, schedule)
    with np.load(tmp_path / "s.npz") as z:
        edm = get_grid("edm")(4, schedule).numpy()
        uniform = get_grid("uniform")(4, schedule).numpy()
        assert not np.allclose(edm, uniform)  # the check below can tell them apart
        np.testing.assert_allclose(z["trajectory_t"], edm)
        # the stored cell is what generate gives on that grid (independently drawn here)
        expected = generate(oracle, "euler", 4, 50, 5, grid="edm").samples.numpy()
        np.testing.assert_allclose(z["euler__edm__steps4"], expected, rtol=1e-5, atol=1e-5)
        assert not np.allclose(z["euler__edm__steps4"], z["euler__steps4"])


def test_unknown_grid_fails_before_sampling(data, tmp_path):
    proc = sfbench("sweep", "--oracle", "--method", "cfm", "--dataset", "8gaussians",
                   "--data", str(data), "--solvers", "euler", "--steps", "4", "--grids", "edmm",
                   "--out", "s.npz", "--result", "s.json", cwd=tmp_path)
    assert proc.returncode != 0
    assert "unknown grid 'edmm'" in proc.stderr
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "s.npz").exists()


@pytest.mark.slow
def test_image_sweep_scores_cells_by_fid_against_the_cached_reference(tmp_path):
    """Digits: the reference job caches the test features and measures floor and baseline;
    the sweep's FID of each cell is the FID of its stored samples, recomputed here."""
    from sfbench.data import get_dataset
    from sfbench.eval.fid import fid_kid, get_extractor

    (tmp_path / "t.yaml").write_text("steps: 30\nbatch_size: 32\nwarmup_steps: 5\nema_decay: 0.9\n")
    for args in (
        ("data", "--dataset", "digits", "--n-train", "1497", "--n-test", "300",
         "--out", "d.npz", "--result", "d.json"),
        ("classifier", "--dataset", "digits", "--steps", "100", "--out", "c.pt",
         "--result", "c.json"),
        ("train", "--method", "rectified_flow", "--dataset", "digits", "--data", "d.npz",
         "--config", "t.yaml", "--no-progress", "--out", "m.pt", "--result", "m.json"),
        ("reference", "--dataset", "digits", "--data", "d.npz", "--classifier",
         "c.pt", "--n-samples", "100", "--seed", "7", "--draws", "2",
         "--kid-subsets", "5", "--fid-features", "ref.npz", "--result", "r.json"),
        ("sweep", "--model", "m.pt", "--data", "d.npz", "--classifier", "c.pt",
         "--fid-features", "ref.npz", "--solvers", "euler", "--steps", "1", "8",
         "--n-samples", "100", "--kid-subsets", "5", "--out", "s.npz", "--plot", "p.png",
         "--result", "s.json"),
    ):
        proc = sfbench(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    ref = json.loads((tmp_path / "r.json").read_text())
    assert ref["settings"]["data_kind"] == "image"
    assert ref["result"]["w2"] is None
    # real train images are far closer to the test split than the fitted Gaussian
    assert ref["result"]["fid"] < ref["result"]["baseline_fid"]
    assert [d["seed"] for d in ref["result"]["baseline_draws"]] == [7, 8]
    protocol = ref["settings"]["fid_protocol"]
    assert protocol["n_samples"] == 100 and protocol["n_reference"] == 300
    assert protocol["extractor_sha256"] == json.loads((tmp_path / "c.json").read_text())[
        "result"]["sha256"]
    assert (tmp_path / "ref.npz").is_file()

    record = json.loads((tmp_path / "s.json").read_text())
    assert record["result"]["selection_metric"] == "fid"
    assert record["settings"]["fid_protocol"]["cached"] is True  # read, not recomputed
    cells = record["result"]["cells"]
    extractor = get_extractor("digits_classifier", str(tmp_path / "c.pt"))
    with np.load(tmp_path / "s.npz") as z:
        for c in cells:
            assert c["w2"] is None and c["mmd"] is None
            again = fid_kid(z[c["key"].replace("/", "__")], get_dataset("digits"), extractor,
                            kid_subsets=5)
            assert c["fid"] == pytest.approx(again["fid"], rel=1e-6)
    best = min(cells, key=lambda c: c["fid"])
    assert record["result"]["best_key"] == best["key"]
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_sweep_writes_the_nll_record_of_evaluate(data, tmp_path):
    """--nll-result: the same record `sfbench evaluate --nll` writes, from the sweep's process."""
    oracle = ["--oracle", "--method", "rectified_flow", "--dataset", "8gaussians"]
    proc = sfbench("sweep", *oracle, "--data", str(data), "--solvers", "euler", "--steps", "4",
                   "--n-samples", "50", "--out", "s.npz", "--result", "s.json",
                   "--nll-result", "nll.json", "--nll-points", "40", "--nll-rtol", "1e-4",
                   "--nll-atol", "1e-4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    alone = sfbench("evaluate", "--nll", *oracle, "--data", str(data), "--n-test", "40",
                    "--rtol", "1e-4", "--atol", "1e-4", "--result", "e.json", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    from_sweep, standalone = (
        json.loads((tmp_path / f).read_text()) for f in ("nll.json", "e.json")
    )
    assert from_sweep["command"] == standalone["command"] == "evaluate"
    assert from_sweep["settings"]["nll"] == standalone["settings"]["nll"]
    assert from_sweep["settings"]["n_test"] == 40
    assert from_sweep["result"]["nll_nats"] == standalone["result"]["nll_nats"]
    assert "nll.json" in json.loads((tmp_path / "s.json").read_text())["outputs"][-1]
