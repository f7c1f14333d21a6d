"""Time grids: uniform, EDM rho-spaced and uniform in log-SNR; the grid walk; the inversion."""

import math

import numpy as np
import pytest
import torch
from call_log import CallLog

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.paths import DDPMSchedule, RectifiedFlowSchedule, VESchedule, VPSchedule
from sfbench.sampling import generate
from sfbench.solvers import (
    GRIDS,
    NoiseSource,
    check_grid,
    edm_grid,
    euler,
    log_snr,
    logsnr_grid,
    t_of_log_snr,
    uniform_grid,
)

SCHEDULES = {name: METHODS[name].schedule() for name in sorted(METHODS)}


def test_uniform_grid():
    grid = uniform_grid(5, 0.0, 0.999)
    assert grid.dtype == torch.float64 and grid.shape == (6,)
    assert grid[0].item() == 0.0 and grid[-1].item() == 0.999
    torch.testing.assert_close(grid.diff(), torch.full((5,), 0.999 / 5, dtype=torch.float64))
    assert uniform_grid(3, 0.0, 1.0)[-1].item() == 1.0


@pytest.mark.parametrize("steps", [0, -3, 2.5, True, "3", None])
def test_grids_reject_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        uniform_grid(steps, 0.0, 1.0)
    for spec in GRIDS.values():
        with pytest.raises(ValueError, match="steps"):
            spec(steps, VPSchedule())


def test_uniform_grid_rejects_empty_interval():
    with pytest.raises(ValueError, match="t_start < t_end"):
        uniform_grid(4, 1.0, 1.0)


def test_check_grid():
    check_grid(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    for bad in (torch.tensor([0.0]), torch.tensor([0.0, 0.5, 0.5]), torch.zeros(2, 2)):
        with pytest.raises(ValueError, match="grid"):
            check_grid(bad)
    with pytest.raises(ValueError, match=r"t\[1\] = 0.5 and t\[2\] = 0.4"):
        check_grid(torch.tensor([0.0, 0.5, 0.4, 1.0]))


@pytest.mark.parametrize("method", sorted(SCHEDULES))
@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_every_grid_on_every_path_is_increasing_with_exact_ends(method, grid):
    schedule = SCHEDULES[method]
    # DDPM's uniform grid is on whole steps: at most 666 of its 1000 (tested below)
    largest = 666 if (method, grid) == ("ddpm", "uniform") else 1000
    for steps in (1, 2, 3, 10, 200, largest):
        times = GRIDS[grid](steps, schedule)
        assert times.dtype == torch.float64 and times.shape == (steps + 1,)
        assert times[0].item() == schedule.t_start and times[-1].item() == schedule.t_end
        assert bool(torch.all(times.diff() > 0)), (steps, times)
        lam = log_snr(schedule, times)
        assert bool(torch.all(lam.diff() > 0))  # lambda increases along every grid


@pytest.mark.parametrize("method", ["probability_flow", "ddpm", "dsm"])
def test_edm_grid_is_rho_spaced_in_sigma_over_alpha(method):
    # Finite sigma~ at both ends: the whole grid is EDM's eq. 5 between them.
    schedule = SCHEDULES[method]
    for rho in (1.0, 3.0, 7.0):
        times = edm_grid(12, schedule, rho=rho)
        sigma_edm = torch.exp(-log_snr(schedule, times))
        spacing = sigma_edm ** (1.0 / rho)
        torch.testing.assert_close(
            spacing.diff(), torch.full((12,), (spacing[-1] - spacing[0]).item() / 12,
                                       dtype=torch.float64), rtol=1e-8, atol=1e-10,
        )
    # larger rho puts more steps near the data (small sigma~)
    assert edm_grid(10, schedule, rho=7.0)[-2] > edm_grid(10, schedule, rho=1.0)[-2]


@pytest.mark.parametrize("method", ["probability_flow", "ddpm", "dsm"])
def test_logsnr_grid_is_uniform_in_lambda(method):
    schedule = SCHEDULES[method]
    lam = log_snr(schedule, logsnr_grid(16, schedule))
    torch.testing.assert_close(
        lam.diff(), torch.full((16,), (lam[-1] - lam[0]).item() / 16, dtype=torch.float64),
        rtol=1e-8, atol=1e-10,
    )


def test_logsnr_grid_on_ve_is_uniform_in_t():
    # VE: lambda = -log sigma_t is linear in t, so uniform lambda is uniform t.
    schedule = VESchedule()
    torch.testing.assert_close(logsnr_grid(9, schedule), uniform_grid(9, 0.0, 1.0))


def test_flow_paths_replace_infinite_log_snr_ends():
    # Rectified flow: lambda = logit(t), infinite at both ends. By default the
    # replaced ends are one uniform step (1/N) inside, the rest is uniform in lambda.
    schedule = RectifiedFlowSchedule()
    n = 10
    times = logsnr_grid(n, schedule)
    assert times[1].item() == pytest.approx(1 / n) and times[-2].item() == pytest.approx(1 - 1 / n)
    inner = log_snr(schedule, times[1:-1])
    torch.testing.assert_close(inner.diff(), torch.full((n - 2,), inner.diff()[0].item(),
                                                        dtype=torch.float64))
    # the end steps shrink as the grid is refined (the grid family converges)
    assert logsnr_grid(100, schedule)[1].item() == pytest.approx(0.01)
    # fixed replacement values (EDM's range) are honoured
    fixed = logsnr_grid(n, schedule, lambda_min=-math.log(80.0), lambda_max=-math.log(0.002))
    assert fixed[1].item() == pytest.approx(1 / 81) and fixed[-2].item() == pytest.approx(500 / 501)
    edm = edm_grid(n, schedule, sigma_max=80.0, sigma_min=0.002)
    sigma_edm = torch.exp(-log_snr(schedule, edm[1:-1]))
    assert sigma_edm[0].item() == pytest.approx(80.0)
    assert sigma_edm[-1].item() == pytest.approx(0.002)


def test_cfm_grid_keeps_its_finite_data_end():
    schedule = SCHEDULES["cfm"]  # sigma_min = 1e-4: lambda(1) = log(1e4) is finite
    times = logsnr_grid(8, schedule)
    assert times[1].item() == pytest.approx(1 / 8)  # alpha = 0 end replaced
    lam = log_snr(schedule, times[1:])
    torch.testing.assert_close(lam.diff(), torch.full((7,), lam.diff()[0].item(),
                                                      dtype=torch.float64))
    assert lam[-1].item() == pytest.approx(math.log(1e4))


@pytest.mark.parametrize(("options", "match"), [
    ({"rho": 0.0}, "rho"),
    ({"rho": -1.0}, "rho"),
    ({"sigma_max": -1.0}, "sigma_max"),
    ({"sigma_max": 1e-9}, "range"),  # below sigma~ at the data end: an empty range
])
def test_edm_grid_options_are_validated(options, match):
    with pytest.raises(ValueError, match=match):
        edm_grid(10, RectifiedFlowSchedule(), **options)


def test_logsnr_grid_options_are_validated():
    with pytest.raises(ValueError, match="range"):
        logsnr_grid(10, RectifiedFlowSchedule(), lambda_min=3.0, lambda_max=-3.0)
    with pytest.raises(ValueError, match="range"):
        logsnr_grid(10, SCHEDULES["cfm"], lambda_min=20.0)  # beyond lambda(t_end)


@pytest.mark.parametrize("method", sorted(SCHEDULES))
def test_t_of_log_snr_inverts_the_schedule(method):
    schedule = SCHEDULES[method]
    t = torch.linspace(schedule.t_start, schedule.t_end, 41, dtype=torch.float64)[1:-1]
    back = t_of_log_snr(schedule, log_snr(schedule, t))
    torch.testing.assert_close(back, t, rtol=0, atol=1e-12)


def test_t_of_log_snr_rejects_out_of_range_targets():
    with pytest.raises(ValueError, match="log-SNR targets"):
        t_of_log_snr(VPSchedule(), torch.tensor([10.0]))
    with pytest.raises(ValueError, match="log-SNR targets"):
        t_of_log_snr(VPSchedule(), torch.tensor([float("nan")]))


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


# --- the integer lattice of discrete-time schedules --------------------------------------


def trailing_by_hand(steps, T):
    """diffusers' timestep_spacing="trailing": np.round(np.arange(T, 0, -T / N)) - 1 are its
    timesteps j; sfbench's step is k = j + 1, and sampling ends at the last trained step k = 1."""
    j = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
    return [*(j + 1).tolist(), 1]


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 10, 16, 50, 333, 666])
def test_ddpm_uniform_grid_is_the_trailing_lattice(steps):
    schedule = DDPMSchedule()
    times = GRIDS["uniform"](steps, schedule)
    k = trailing_by_hand(steps, 1000)
    # every point is exactly the time of a whole step, t = 1 - k / T
    assert torch.equal(times, 1.0 - torch.tensor(k, dtype=torch.float64) / 1000)
    assert times[0].item() == schedule.t_start and times[-1].item() == schedule.t_end


def test_ddpm_trailing_lattice_at_ten_steps():
    times = GRIDS["uniform"](10, DDPMSchedule())
    k = [1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 1]
    assert times.tolist() == [1.0 - ki / 1000 for ki in k]


def test_ddpm_linspace_lattice():
    schedule = DDPMSchedule(num_steps=100)
    times = GRIDS["uniform"](6, schedule, lattice="linspace")
    # round(100 - 16.5 i): 100, 83.5 -> 84 (half to even), 67, 50.5 -> 50, 34, 17.5 -> 18, 1
    k = [100, 84, 67, 50, 34, 18, 1]
    assert times.tolist() == [1.0 - ki / 100 for ki in k]
    every = GRIDS["uniform"](99, schedule, lattice="linspace")  # all of Ho et al.'s steps
    assert (1.0 - every).mul(100).round().tolist() == list(range(100, 0, -1))


@pytest.mark.parametrize(("lattice", "limit"), [("trailing", 666), ("linspace", 999)])
def test_too_many_lattice_steps_name_the_limit(lattice, limit):
    schedule = DDPMSchedule()
    assert len(GRIDS["uniform"](limit, schedule, lattice=lattice)) == limit + 1
    for steps in (limit + 1, 1000, 5000):
        with pytest.raises(ValueError, match=rf"{lattice}.*{steps} steps.*at most {limit}"):
            GRIDS["uniform"](steps, schedule, lattice=lattice)


def test_lattice_none_is_the_uniform_t_grid():
    schedule = DDPMSchedule()
    for steps in (1, 10, 1000, 5000):
        assert torch.equal(GRIDS["uniform"](steps, schedule, lattice="none"),
                           uniform_grid(steps, schedule.t_start, schedule.t_end))


@pytest.mark.parametrize("method", sorted(set(SCHEDULES) - {"ddpm"}))
def test_continuous_schedules_ignore_the_lattice(method):
    schedule = SCHEDULES[method]
    assert not schedule.is_discrete
    for steps in (1, 10, 1000):
        expected = uniform_grid(steps, schedule.t_start, schedule.t_end)
        for lattice in ("trailing", "linspace", "none"):
            assert torch.equal(GRIDS["uniform"](steps, schedule, lattice=lattice), expected)


def test_unknown_lattice_is_refused():
    for schedule in (DDPMSchedule(), VPSchedule()):
        with pytest.raises(ValueError, match=r"lattice.*'trailing', 'linspace', 'none'.*'leading'"):
            GRIDS["uniform"](10, schedule, lattice="leading")


@pytest.mark.parametrize("solver", ["ddim", "ddpm_ancestral"])
def test_ddpm_model_is_only_evaluated_at_whole_steps(solver):
    schedule = DDPMSchedule()
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, schedule)

    def steps_seen(**grid_options):
        log = CallLog(oracle)
        generate(log, solver, 10, 16, seed=0, dtype=torch.float64, grid_options=grid_options)
        return 1000 * (1 - np.array(sorted(set(log.all_times))))  # the steps k = T (1 - t)

    for lattice in ("trailing", "linspace"):
        k = steps_seen(lattice=lattice)
        assert len(k) == 10 and np.abs(k - np.round(k)).max() < 1e-9, (lattice, k)
    off = steps_seen(lattice="none")  # the continuous grid is off the lattice: the test bites
    assert np.abs(off - np.round(off)).max() > 0.1
