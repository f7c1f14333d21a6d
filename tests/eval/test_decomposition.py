"""Error decomposition on Gaussian mixtures: oracle checks, exact identities and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sfbench.cli import main
from sfbench.data import get_dataset
from sfbench.data.gmm import GaussianMixture
from sfbench.eval.decomposition import decompose, noise_floor, paired_rmse
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import RectifiedFlowSchedule

N = 500
CELLS = [("euler", 1), ("euler", 4), ("euler", 16), ("heun", 4), ("euler_maruyama", 8)]


def run_cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def gmm():
    ds = get_dataset("8gaussians")
    test = ds.sample(N, seed=0, split="test")
    floor = noise_floor([ds.sample(N, s, "test") for s in (777, 778, 779)], test)
    return ds, test, floor


def test_paired_rmse_of_a_shift_is_its_length():
    a = torch.randn(100, 2, dtype=torch.float64)
    assert paired_rmse(a + torch.tensor([3.0, 4.0], dtype=torch.float64), a) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="differ in shape"):
        paired_rmse(a, a[:10])


def test_the_oracle_decomposes_into_discretization_alone(gmm):
    ds, test, floor = gmm
    oracle = GaussianMixtureOracle(ds.mixture, RectifiedFlowSchedule())
    res = decompose(oracle, oracle, test, CELLS, N, seed=1, model_dtype=torch.float64)
    # Its exact flow carries N(0, I) exactly onto the data: W2 at the noise floor
    # (measured 0.56 against 0.44 +- 0.07 at n = 500; over noise seeds 0-5 the exact
    # flow gives 0.37-0.56 and independent data draws 0.39-0.54). A wrong flow is far
    # off: one Euler step gives 3.1.
    assert res.exact_flow_w2 == res.oracle_exact_w2
    assert abs(res.exact_flow_w2 - floor["floor_w2"]) < 3 * floor["floor_w2_std"] + 0.05
    for row in res.cells:
        assert row["total_w2"] == row["discretization_w2"], row  # same model, same noise
        if row["solver_kind"] == "ode":
            assert row["model_discretization_rmse"] == row["discretization_rmse"], row
        else:  # no pathwise reference for a stochastic solver
            assert row["discretization_rmse"] is None and row["model_discretization_rmse"] is None
    euler = [r["discretization_rmse"] for r in res.cells if r["solver"] == "euler"]
    assert euler[0] > euler[1] > euler[2] > 0  # refining the grid approaches the exact flow
    heun4 = next(r for r in res.cells if r["solver"] == "heun")
    assert heun4["nfe"] == 8 and heun4["discretization_rmse"] < euler[1]


def test_a_wrong_model_shows_its_learning_error_in_the_exact_flow_term(gmm):
    # A model with a known error: the oracle of the data shifted by m. Its exact
    # flow's samples are the data's shifted by m (W2 = |m| = 1 between the laws).
    ds, test, floor = gmm
    mix = ds.mixture
    shift = np.array([0.6, 0.8])
    shifted = GaussianMixture(mix.weights, mix.means + shift, mix.covs)
    schedule = RectifiedFlowSchedule()
    model = GaussianMixtureOracle(shifted, schedule)
    oracle = GaussianMixtureOracle(mix, schedule)
    res = decompose(model, oracle, test, CELLS[:4], N, seed=1, model_dtype=torch.float64)
    # measured 1.32; the oracle's own 0.56 (the floor) and Euler-1 of either 2.9-3.1
    assert 0.9 < res.exact_flow_w2 < 1.0 + floor["floor_w2"], res.exact_flow_w2
    assert res.oracle_exact_w2 < 0.6
    for row in res.cells:
        # W2 is a metric on empirical measures and paired RMSE bounds it (one coupling):
        # total <= exact flow + the model's own discretization, exactly.
        assert row["total_w2"] <= res.exact_flow_w2 + row["model_discretization_rmse"] + 1e-9
        assert row["discretization_w2"] is not None and row["discretization_rmse"] is not None


def test_inputs_are_checked(gmm):
    ds, test, _ = gmm
    oracle = GaussianMixtureOracle(ds.mixture, RectifiedFlowSchedule())
    with pytest.raises(ValueError, match="adaptive"):
        decompose(oracle, oracle, test, [("dopri5", 1)], 10, 0)
    with pytest.raises(ValueError, match="no \\(solver, steps\\) cell"):
        decompose(oracle, oracle, test, [], 10, 0)
    with pytest.raises(ValueError, match="at least one"):
        noise_floor([], test)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("decompose")
    for name in ("8gaussians", "moons"):
        assert run_cli("data", "--dataset", name, "--n-train", 500, "--n-test", 300,
                       "--out", d / f"{name}.npz", "--result", d / f"{name}.json") == 0
    return d


def test_cli_on_the_oracle_writes_every_term(data_files, tmp_path):
    out = tmp_path / "dec.json"
    assert run_cli("decompose", "--oracle", "--method", "cfm", "--dataset", "8gaussians",
                   "--data", data_files / "8gaussians.npz", "--solvers", "euler", "ddim",
                   "--steps", 2, 8, "--n-samples", 300, "--seed", 5,
                   "--straightness-steps", 20, "--result", out) == 0
    rec = json.loads(out.read_text())
    s, r = rec["settings"], rec["result"]
    assert (s["method"], s["dataset"], s["n_samples"], s["sampling_seed"]) == (
        "cfm", "8gaussians", 300, 5)
    assert s["exact_solver"] == "dopri5" and s["exact_tolerance"] == 1e-5
    assert [c["key"] for c in r["cells"]] == [
        "euler/steps2", "euler/steps8", "ddim/steps2", "ddim/steps8"]
    assert all(c["total_w2"] == c["discretization_w2"] for c in r["cells"])
    assert r["floor_w2"] > 0 and len(r["floor_w2_draws"]) == 3
    flow = r["flow"]
    assert flow["straightness_steps"] == 20 and flow["path_energy_ratio"] >= 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--oracle", "--method", "cfm", "--dataset", "moons"], "Gaussian-mixture dataset"),
        (["--oracle", "--method", "cfm", "--dataset", "8gaussians", "--solvers", "dopri5"],
         "adaptive"),
        (["--oracle", "--method", "distill", "--dataset", "8gaussians"], "no oracle"),
    ],
)
def test_cli_refuses_bad_inputs(data_files, tmp_path, capsys, argv, message):
    out = tmp_path / "dec.json"
    solvers = [] if "--solvers" in argv else ["--solvers", "euler"]
    assert run_cli("decompose", *argv, *solvers, "--steps", 2, "--n-samples", 50,
                   "--data", data_files / "8gaussians.npz", "--result", out) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
