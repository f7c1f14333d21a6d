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
    assert all(np.isfinite([c["w2"], c["mmd"], c["fid"]]).all() for c in cells)
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


def test_reference_measures_the_noise_floor(data, tmp_path):
    proc = sfbench("sweep", "--reference", "--dataset", "8gaussians", "--data", str(data),
                   "--seed", "777", "--result", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["settings"]["mode"] == "reference"
    assert r["settings"]["reference_seeds"] == [777, 778, 779]
    assert len(r["result"]["draws"]) == 3
    assert 0 < r["result"]["w2"] < 1.0 and r["result"]["w2_std"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--solvers", "dopri5", "--steps", "4"], "'dopri5' is adaptive"),
        (["--adaptive", "euler:1e-3"], "'euler' is fixed-step"),
        (["--solvers", "eulr", "--steps", "4"], "unknown solver 'eulr'"),
        (["--solvers", "euler"], "--solvers needs --steps"),
        ([], "nothing to sample"),
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
