"""generate(): batching, paired starting noise, settings, validation."""

import json

import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.model import NetworkModel
from sfbench.models import MLP
from sfbench.sampling import SampleResult, generate
from sfbench.solvers import GRIDS, SOLVERS, NoiseSource


def oracle(method="rectified_flow"):
    return GaussianMixtureOracle(get_dataset("8gaussians").mixture, METHODS[method].schedule())


def network(method="cfm"):
    m = METHODS[method]
    torch.manual_seed(0)
    return NetworkModel(MLP(dim=2, width=16, depth=1), m, m.schedule())


def test_result_and_settings():
    model = oracle("ddpm")
    result = generate(model, "ddim", 8, 30, seed=7, batch_size=12)
    assert isinstance(result, SampleResult)
    assert result.samples.shape == (30, 2) and result.samples.device.type == "cpu"
    assert result.nfe == 8 and result.nfe_per_batch == [8, 8, 8]
    assert result.wall_seconds > 0 and result.trajectory is None
    s = result.settings
    assert s["solver"] == "ddim" and s["solver_kind"] == "ode"
    assert s["steps"] == 8 and s["options"] == {"eta": 0.0}  # defaults are recorded
    assert (s["seed"], s["n_samples"], s["batch_size"], s["dim"]) == (7, 30, 12, 2)
    # the grid's defaults are recorded too: on DDPM the uniform grid is the trailing lattice
    assert s["grid"] == "uniform" and s["grid_options"] == {"lattice": "trailing"}
    assert s["dtype"] == "float32"
    assert (s["t_start"], s["t_end"]) == (model.schedule.t_start, model.schedule.t_end)
    assert s["prior_std"] == model.schedule.prior_std()
    assert s["schedule"] == model.schedule.describe()
    assert s["noise"]["brownian_depth"] == 24
    # whole DDPM steps k = 1000, 875, ..., 125, then the last trained step k = 1
    steps = torch.tensor([*range(1000, 0, -125), 1], dtype=torch.float64)
    torch.testing.assert_close(result.grid, 1.0 - steps / 1000, rtol=0, atol=0)
    json.dumps(s)  # result files are JSON


def test_sample_i_starts_from_the_same_noise_everywhere():
    model = oracle("cfm")
    runs = [
        generate(model, "euler", 3, 20, seed=9, record_trajectory=True),
        generate(model, "rk4", 10, 20, seed=9, batch_size=7, record_trajectory=True),
        generate(model, "euler_maruyama", 5, 20, seed=9, batch_size=3, record_trajectory=True),
        generate(model, "dopri5", None, 20, seed=9, batch_size=20, record_trajectory=True),
        generate(model, "ddim", 4, 20, seed=9, batch_size=1, record_trajectory=True, eta=0.3),
    ]
    expected = NoiseSource(9, 20).initial((2,), model.schedule.prior_std())
    for run in runs:
        torch.testing.assert_close(run.trajectory[0], expected, rtol=0, atol=0)
    # a run with more samples extends, not reshuffles
    more = generate(model, "heun", 2, 35, seed=9, batch_size=16, record_trajectory=True)
    torch.testing.assert_close(more.trajectory[0, :20], expected, rtol=0, atol=0)


def test_trajectory():
    result = generate(oracle(), "heun", 6, 10, seed=0, batch_size=4, record_trajectory=True)
    assert result.trajectory.shape == (7, 10, 2)
    torch.testing.assert_close(result.trajectory[-1], result.samples)
    adaptive = generate(oracle(), "dopri5", None, 10, seed=0, record_trajectory=True)
    assert adaptive.trajectory.shape == (2, 10, 2)


def test_callbacks_see_every_batch_and_grid_point_without_changing_the_samples():
    model = network()
    plain = generate(model, "heun", 5, 10, seed=2, batch_size=4, record_trajectory=True)
    batches, steps = [], []
    watched = generate(model, "heun", 5, 10, seed=2, batch_size=4, callback=batches.append,
                       step_callback=lambda i, t, x: steps.append((i, t, x.clone())))
    torch.testing.assert_close(watched.samples, plain.samples, rtol=0, atol=0)
    assert [(b.start, b.stop, b.nfe) for b in batches] == [(0, 4, 10), (4, 8, 10), (8, 10, 10)]
    assert all(b.grid is watched.grid for b in batches)
    torch.testing.assert_close(torch.cat([b.initial for b in batches]), watched.initial)
    torch.testing.assert_close(torch.cat([b.final for b in batches]), watched.samples)
    # every grid point of every batch, in order: the states of the trajectory
    assert [i for i, _, _ in steps] == list(range(6)) * 3
    assert [t for _, t, _ in steps[:6]] == pytest.approx(watched.grid.tolist())
    torch.testing.assert_close(torch.cat([x for i, _, x in steps if i == 3]),
                               plain.trajectory[3], rtol=0, atol=0)


def test_deterministic_samples_do_not_depend_on_batch_size():
    model = oracle("probability_flow")
    whole = generate(model, "rk4", 5, 24, seed=1, dtype=torch.float64).samples
    batched = generate(model, "rk4", 5, 24, seed=1, batch_size=5, dtype=torch.float64).samples
    torch.testing.assert_close(batched, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("solver", "options"), [
    ("euler_maruyama", {}), ("ddpm_ancestral", {}), ("pc", {"corrector_steps": 2}),
    ("edm_heun", {"s_churn": 20.0}), ("ddim", {"eta": 0.7}),
])
def test_stochastic_samples_do_not_depend_on_batch_size(solver, options):
    # Step noise is each sample's own Brownian path, so batching changes nothing.
    model = oracle("probability_flow")
    whole = generate(model, solver, 6, 24, seed=1, dtype=torch.float64, **options).samples
    for batch_size in (1, 5, 16):
        batched = generate(model, solver, 6, 24, seed=1, batch_size=batch_size,
                           dtype=torch.float64, **options).samples
        torch.testing.assert_close(batched, whole, rtol=1e-12, atol=1e-12)


def test_refining_the_grid_refines_the_same_brownian_path():
    # Strong convergence: with the same Brownian path, Euler-Maruyama with 2N steps lands
    # next to the N-step sample; fresh noise (another seed) lands a data std away.
    model = oracle("probability_flow")
    # Measured median gaps to the 200-step sample: 0.045 (50 steps), 0.018 (100), 4.1 (seed 6).
    runs = {n: generate(model, "euler_maruyama", n, 200, seed=5, dtype=torch.float64).samples
            for n in (50, 100, 200)}
    other = generate(model, "euler_maruyama", 200, 200, seed=6, dtype=torch.float64).samples
    gap_coarse = (runs[50] - runs[200]).norm(dim=1).median()
    gap_fine = (runs[100] - runs[200]).norm(dim=1).median()
    gap_other = (other - runs[200]).norm(dim=1).median()
    assert gap_fine < gap_coarse < 0.05 * gap_other, (gap_coarse, gap_fine, gap_other)


def test_grid_is_chosen_by_name_and_recorded():
    model = oracle("probability_flow")
    for grid in GRIDS:
        result = generate(model, "heun", 7, 5, seed=0, grid=grid)
        assert result.settings["grid"] == grid
        torch.testing.assert_close(result.grid, GRIDS[grid](7, model.schedule))
    edm = generate(model, "heun", 7, 5, seed=0, grid="edm", grid_options={"rho": 3.0})
    assert edm.settings["grid_options"] == {"rho": 3.0, "sigma_max": None, "sigma_min": None}
    torch.testing.assert_close(edm.grid, GRIDS["edm"](7, model.schedule, rho=3.0))
    json.dumps(edm.settings)
    assert not torch.allclose(edm.samples, generate(model, "heun", 7, 5, seed=0).samples)


def test_bad_grid_and_grid_option():
    with pytest.raises(ValueError, match=r"unknown grid 'karras'.*edm, logsnr, uniform"):
        generate(oracle(), "euler", 4, 4, seed=0, grid="karras")
    with pytest.raises(ValueError, match=r"'rh'.*grid 'edm'.*valid options: rho"):
        generate(oracle(), "euler", 4, 4, seed=0, grid="edm", grid_options={"rh": 2})
    with pytest.raises(ValueError, match="rho"):
        generate(oracle(), "euler", 4, 4, seed=0, grid="edm", grid_options={"rho": -2})


def test_reproducible_and_seed_dependent():
    for solver in ("euler_maruyama", "ddpm_ancestral", "pc"):
        a = generate(oracle(), solver, 5, 16, seed=3, batch_size=8).samples
        b = generate(oracle(), solver, 5, 16, seed=3, batch_size=8).samples
        c = generate(oracle(), solver, 5, 16, seed=4, batch_size=8).samples
        assert torch.equal(a, b) and not torch.allclose(a, c)


def test_dtype_and_network_state():
    assert generate(oracle(), "euler", 2, 5, seed=0, dtype=torch.float64).samples.dtype == (
        torch.float64
    )
    model = network()
    model.train()
    result = generate(model, "heun", 3, 9, seed=0)
    assert result.samples.dtype == torch.float32 and not result.samples.requires_grad
    assert model.training  # restored after sampling in eval mode
    assert result.settings["dim"] == 2  # inferred from the network


def test_adaptive_solver_ignores_steps():
    result = generate(oracle(), "dopri5", 50, 8, seed=0, rtol=1e-4, grid="edm")
    assert result.settings["steps"] is None and result.settings["grid"] == "endpoints"
    assert result.settings["grid_options"] == {} and result.grid.tolist() == [0.0, 1.0]
    assert result.settings["options"] == {"rtol": 1e-4, "atol": 1e-5}


@pytest.mark.parametrize("steps", [0, -2, None, 1.5])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        generate(oracle(), "euler", steps, 4, seed=0)


def test_bad_solver_and_option():
    with pytest.raises(ValueError, match=r"unknown solver 'euler2'.*dopri5.*rk4"):
        generate(oracle(), "euler2", 4, 4, seed=0)
    with pytest.raises(ValueError, match=r"'rtol'.*'heun'.*valid options: none"):
        generate(oracle(), "heun", 4, 4, seed=0, rtol=1e-3)
    with pytest.raises(ValueError, match="eta"):
        generate(oracle(), "ddim", 4, 4, seed=0, eta=2.0)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"n_samples": 0}, "n_samples"), ({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed"),
])
def test_bad_sizes(kwargs, name):
    args = {"n_samples": 4, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=name):
        generate(oracle(), "euler", 2, **args)


def test_every_solver_is_reachable_by_name():
    for solver in SOLVERS:
        assert generate(oracle(), solver, 2, 3, seed=0).samples.shape == (3, 2)
