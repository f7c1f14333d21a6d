"""Time grids, the grid walk and the per-sample noise source."""

import time

import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import RectifiedFlowSchedule
from sfbench.solvers import NoiseSource, check_grid, euler, uniform_grid


def test_uniform_grid():
    grid = uniform_grid(5, 0.0, 0.999)
    assert grid.dtype == torch.float64 and grid.shape == (6,)
    assert grid[0].item() == 0.0 and grid[-1].item() == 0.999
    torch.testing.assert_close(grid.diff(), torch.full((5,), 0.999 / 5, dtype=torch.float64))
    assert uniform_grid(3, 0.0, 1.0)[-1].item() == 1.0


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "3", None])
def test_uniform_grid_rejects_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        uniform_grid(steps, 0.0, 1.0)


def test_uniform_grid_rejects_empty_interval():
    with pytest.raises(ValueError, match="t_start < t_end"):
        uniform_grid(4, 1.0, 1.0)


def test_check_grid():
    check_grid(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    for bad in (torch.tensor([0.0]), torch.tensor([0.0, 0.5, 0.5]), torch.zeros(2, 2)):
        with pytest.raises(ValueError, match="grid"):
            check_grid(bad)


def test_callback_sees_every_grid_point():
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, RectifiedFlowSchedule())
    noise = NoiseSource(0, 8)
    x0 = noise.initial((2,))
    grid = uniform_grid(4, 0.0, 1.0)
    seen = []
    out = euler(oracle, x0, grid, noise, callback=lambda i, t, x: seen.append((i, t, x)))
    assert [i for i, _, _ in seen] == [0, 1, 2, 3, 4]
    assert [t for _, t, _ in seen] == grid.tolist()
    assert seen[0][2] is x0 and torch.equal(seen[-1][2], out)


def test_initial_noise_depends_only_on_seed_and_index():
    full = NoiseSource(seed=5, n_samples=10).initial((3,), std=2.0, dtype=torch.float64)
    assert full.shape == (10, 3) and full.dtype == torch.float64
    # a batch of the run, and a run with more samples, reproduce the same rows
    part = NoiseSource(seed=5, n_samples=10).batch(4, 7).initial((3,), 2.0, torch.float64)
    torch.testing.assert_close(part, full[4:7], rtol=0, atol=0)
    longer = NoiseSource(seed=5, n_samples=25).initial((3,), 2.0, torch.float64)
    torch.testing.assert_close(longer[:10], full, rtol=0, atol=0)
    # std scales, dtype only rounds
    unit = NoiseSource(seed=5, n_samples=10).initial((3,), 1.0, torch.float32)
    torch.testing.assert_close(unit, (full / 2).float())
    other = NoiseSource(seed=6, n_samples=10).initial((3,), 2.0, torch.float64)
    assert not torch.allclose(other, full)


def test_initial_noise_is_standard_normal():
    z = NoiseSource(seed=0, n_samples=5000).initial((2,), dtype=torch.float64)
    assert z.mean(0).abs().max() < 0.06
    torch.testing.assert_close(torch.cov(z.T), torch.eye(2, dtype=torch.float64), atol=0.06, rtol=0)


def test_initial_noise_is_fast_for_10k_samples():
    tic = time.perf_counter()
    NoiseSource(seed=0, n_samples=10_000).initial((2,))
    assert time.perf_counter() - tic < 10.0  # about 0.1 s; guards against a per-sample blow-up


def test_step_noise():
    noise = NoiseSource(seed=1, n_samples=6)
    like = torch.zeros(6, 2, dtype=torch.float64)
    z0 = noise.step(0, like)
    assert z0.shape == like.shape and z0.dtype == like.dtype
    torch.testing.assert_close(noise.step(0, like), z0, rtol=0, atol=0)  # deterministic
    assert not torch.allclose(noise.step(1, like), z0)  # independent across steps
    # two batches of one run get different step noise, not copies
    first, second = noise.batch(0, 3), noise.batch(3, 6)
    assert not torch.allclose(first.step(0, like[:3]), second.step(0, like[:3]))
    # and step noise is not the starting noise
    assert not torch.allclose(noise.initial((2,), dtype=torch.float64), z0)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"seed": -1, "n_samples": 3}, "seed"),
    ({"seed": 0, "n_samples": 0}, "n_samples"),
    ({"seed": 1.5, "n_samples": 3}, "seed"),
])
def test_noise_source_validates(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NoiseSource(**kwargs)


def test_batch_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        NoiseSource(0, 4).batch(2, 6)
