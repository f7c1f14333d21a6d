"""Convergence orders against a closed-form flow.

For one-Gaussian data N(m, diag(s^2)) on the rectified-flow path
x_t = t x_data + (1 - t) eps, the marginal is N(t m, std_t^2) per dimension
with std_t^2 = t^2 s^2 + (1 - t)^2. The velocity field that moves a Gaussian
along these marginals and is the conditional mean E[x_data - eps | x_t] is
affine, v(x, t) = m + (std_t' / std_t)(x - t m), std_t' = (t s^2 - (1 - t)) / std_t,
so the flow from x_0 = z (std_0 = 1) is x_t = t m + std_t z and ends at
x_1 = m + s z. ``test_closed_form_velocity_matches_oracle`` checks this
derivation against the oracle before the orders rely on it.

On mixtures the flow has no closed form; there the orders are measured
against a fine reference solution (RK4 with 2048 steps, itself accurate to
~1e-10) on the three-component ``gmm_aniso``, whose curved trajectories
would hide a solver that is exact only for affine fields.
"""

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.data.gmm import GaussianMixture
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import RectifiedFlowSchedule, VESchedule, VPSchedule
from sfbench.sampling import generate
from sfbench.solvers import GRIDS, SOLVERS, NoiseSource, ddim, dopri5, euler, rk4, uniform_grid

MEAN = np.array([1.0, -2.0])
STD = np.array([0.5, 2.0])


def gaussian_oracle(schedule):
    mixture = GaussianMixture(np.ones(1), MEAN[None], np.diag(STD**2)[None])
    return GaussianMixtureOracle(mixture, schedule)


def start(n=32, std=1.0):
    noise = NoiseSource(seed=3, n_samples=n)
    return noise, noise.initial((2,), std, torch.float64)


def exact_flow(z, t):
    m, s = torch.tensor(MEAN), torch.tensor(STD)
    return t * m + torch.sqrt(t**2 * s**2 + (1 - t) ** 2) * z


def test_closed_form_velocity_matches_oracle():
    oracle = gaussian_oracle(RectifiedFlowSchedule())
    _, z = start()
    m, s = torch.tensor(MEAN), torch.tensor(STD)
    for t in (0.0, 0.3, 0.7, 0.95, 1.0):
        x = exact_flow(z, t)
        std = torch.sqrt(t**2 * s**2 + (1 - t) ** 2)
        d_std = (t * s**2 - (1 - t)) / std
        expected = m + d_std / std * (x - t * m)
        torch.testing.assert_close(oracle.predict(x, t).velocity, expected, rtol=1e-10, atol=1e-10)
        # and the finite-difference derivative of the closed-form flow agrees
        if 0 < t < 1:
            h = 1e-6
            fd = (exact_flow(z, t + h) - exact_flow(z, t - h)) / (2 * h)
            torch.testing.assert_close(oracle.predict(x, t).velocity, fd, rtol=1e-6, atol=1e-6)


def endpoint_errors(solver, steps, oracle, z, noise, reference):
    errors = []
    for n in steps:
        x = SOLVERS[solver].fn(oracle, z, uniform_grid(n, 0.0, 1.0), noise)
        errors.append((x - reference).abs().max().item())
    return errors


ORDERS = [("euler", 1), ("heun", 2), ("midpoint", 2), ("rk4", 4)]


def slope(steps, errors):
    return np.polyfit(np.log(steps), np.log(errors), 1)[0]


# Midpoint is left out here: on this affine field its leading error term cancels and it
# converges at order 3 (measured -3.0), so it is checked on the mixture below instead.
@pytest.mark.parametrize(("solver", "order"), [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_fixed_step_orders_on_rectified_flow(solver, order):
    oracle = gaussian_oracle(RectifiedFlowSchedule())
    noise, z = start()
    reference = exact_flow(z, 1.0)
    steps = [16, 32, 64]
    errors = endpoint_errors(solver, steps, oracle, z, noise, reference)
    assert abs(slope(steps, errors) + order) < 0.3, (solver, errors, slope(steps, errors))


@pytest.mark.parametrize("tol", [1e-8, 1e-10])
def test_dopri5_matches_closed_form(tol):
    # Within 10 x tol: stepping past t = 1 and interpolating back (torchdiffeq's
    # default) would miss by about 100 x tol here.
    oracle = gaussian_oracle(RectifiedFlowSchedule())
    noise, z = start()
    x = dopri5(oracle, z, uniform_grid(1, 0.0, 1.0), noise, rtol=tol, atol=tol)
    torch.testing.assert_close(x, exact_flow(z, 1.0), rtol=0, atol=10 * tol)


def test_ddim_is_euler_on_rectified_flow():
    # alpha = t, sigma = 1 - t: alpha_s x0 + sigma_s eps = x_t + (s - t)(x0 - eps).
    oracle = gaussian_oracle(RectifiedFlowSchedule())
    noise, z = start()
    grid = uniform_grid(7, 0.0, 1.0)
    torch.testing.assert_close(ddim(oracle, z, grid, noise), euler(oracle, z, grid, noise))


def test_ddim_first_order_on_vp():
    schedule = VPSchedule()
    oracle = gaussian_oracle(schedule)
    noise, z = start(std=schedule.prior_std())
    ends = (schedule.t_start, schedule.t_end)
    reference = dopri5(oracle, z, uniform_grid(1, *ends), noise, rtol=1e-10, atol=1e-10)
    steps = [16, 32, 64]
    errors = [
        (ddim(oracle, z, uniform_grid(n, *ends), noise) - reference).abs().max().item()
        for n in steps
    ]
    assert abs(slope(steps, errors) + 1) < 0.3, (errors, slope(steps, errors))


@pytest.fixture(scope="module")
def mixture_references():
    """(oracle, start, fine reference) per path: RK4 with 2048 steps on gmm_aniso."""
    # Module fixtures run before the per-test one-thread fixture; two threads on a shared
    # 2-core machine make these 16k oracle calls 50x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    for schedule in (RectifiedFlowSchedule(), VPSchedule()):
        oracle = GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, schedule)
        noise, z = start(std=schedule.prior_std())
        fine = rk4(oracle, z, GRIDS["uniform"](2048, schedule), noise)
        out[schedule.name] = (oracle, noise, z, fine)
    torch.set_num_threads(threads)
    return out


def errors_against(reference, solver, grid, steps):
    oracle, noise, z, fine = reference
    schedule = oracle.schedule
    return [
        (SOLVERS[solver].fn(oracle, z, GRIDS[grid](n, schedule), noise) - fine).abs().max().item()
        for n in steps
    ]


@pytest.mark.parametrize("path", ["rectified_flow", "vp"])
@pytest.mark.parametrize(("solver", "order"), ORDERS)
def test_fixed_step_orders_against_a_fine_reference(mixture_references, path, solver, order):
    # Measured slopes over 32..128 steps (euler 64..256), RF / VP: euler -1.07 / -1.10,
    # heun -1.99 / -1.96, midpoint -1.96 / -1.92, rk4 -3.91 / -3.87; reference error ~1e-10.
    steps = [64, 128, 256] if solver == "euler" else [32, 64, 128]
    errors = errors_against(mixture_references[path], solver, "uniform", steps)
    assert abs(slope(steps, errors) + order) < 0.3, (errors, slope(steps, errors))


def test_dpm_solver_pp_2m_is_second_order_in_log_snr_steps_on_vp(mixture_references):
    # Local slopes 16 -> 512 steps: -2.13, -1.77, -1.91, -1.96, -1.98 (1 NFE per step).
    steps = [64, 128, 256]
    errors = errors_against(mixture_references["vp"], "dpm_solver_pp_2m", "logsnr", steps)
    assert abs(slope(steps, errors) + 2) < 0.3, (errors, slope(steps, errors))


@pytest.mark.parametrize("grid", ["edm", "uniform"])
def test_edm_heun_without_churn_is_second_order(mixture_references, grid):
    steps = [32, 64, 128]
    errors = errors_against(mixture_references["vp"], "edm_heun", grid, steps)
    assert abs(slope(steps, errors) + 2) < 0.3, (errors, slope(steps, errors))


def test_second_order_solvers_on_ve_edm_grid():
    # VE: alpha = 1, so EDM's Heun is exactly Heun in sigma; DPM-Solver++ in -log sigma.
    schedule = VESchedule()
    oracle = GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, schedule)
    noise, z = start(std=schedule.prior_std())
    fine = rk4(oracle, z, GRIDS["edm"](1024, schedule), noise)
    steps = [32, 64, 128]
    for solver in ("edm_heun", "dpm_solver_pp_2m", "heun"):
        errors = [(SOLVERS[solver].fn(oracle, z, GRIDS["edm"](n, schedule), noise) - fine)
                  .abs().max().item() for n in steps]
        assert abs(slope(steps, errors) + 2) < 0.35, (solver, errors)


# --- weak convergence: the law of the samples (issue 15, item 10) ------------------------
#
# euler_maruyama, pc and dopri5 have no counterpart in diffusers to be checked against, so
# their convergence is checked against the exact law. On one-Gaussian data the marginal at
# t_end is exactly N(alpha m, alpha^2 s^2 + sigma^2) per dimension; the statistic is the
# standardised second moment E|z|^2 - d, z = (x - alpha m) / std, 0 for the exact law (a
# wrong mean or variance moves it). Every step count refines the same Brownian paths from
# the same starting points (common random numbers), so the Monte-Carlo error of the 4000
# samples (std ~0.03) is nearly the same at every step count and cancels from the
# differences between step counts, which carry the discretisation error alone.


def standardised_second_moment(solver, steps, n=4000, **options):
    schedule = VPSchedule()
    oracle = gaussian_oracle(schedule)
    c = schedule(torch.tensor(schedule.t_end, dtype=torch.float64))
    mean, std = c.alpha * torch.tensor(MEAN), torch.sqrt(
        c.alpha**2 * torch.tensor(STD) ** 2 + c.sigma**2)
    x = generate(oracle, solver, steps, n, seed=3, dtype=torch.float64, **options).samples
    return float((((x - mean) / std) ** 2).mean(0).sum() - len(MEAN))


@pytest.mark.parametrize("solver", ["euler_maruyama", "pc"])
def test_sde_solvers_converge_weakly_at_order_one(solver):
    # Weak order 1: the error e(N) ~ C / N, so e(16) - e(32) = 2 (e(32) - e(64)); order 2
    # would give 4, order 1/2 1.4. Measured on VP, e(16, 32, 64): euler_maruyama 0.203,
    # 0.084, 0.034 (ratio 2.39), pc 0.167, 0.046, -0.005 (ratio 2.39). The Richardson
    # extrapolation 2 e(64) - e(32), which removes the 1/N term, is then the exact law up
    # to Monte-Carlo error (measured -0.016 and -0.055).
    errors = [standardised_second_moment(solver, n) for n in (16, 32, 64)]
    ratio = (errors[0] - errors[1]) / (errors[1] - errors[2])
    assert 1.6 < ratio < 3.2, (errors, ratio)
    assert abs(2 * errors[2] - errors[1]) < 0.1, errors
    assert abs(errors[0]) > 0.1  # 16 steps are visibly biased: the test can see the error


def test_dopri5_law_converges_as_the_tolerance_tightens():
    # On the curved flows of the 8-gaussians mixture (rectified flow, whose prior is exact):
    # the mean and covariance of dopri5's samples against those of the same starting points
    # solved at tolerance 1e-8. Measured max errors (mean / covariance): 1e-2: 3e-3 / 8e-2,
    # 1e-4: 1e-5 / 1e-3, 1e-6: 7e-7 / 7e-6.
    mixture = get_dataset("8gaussians").mixture
    oracle = GaussianMixtureOracle(mixture, RectifiedFlowSchedule())

    def moments(tol):
        x = generate(oracle, "dopri5", None, 300, seed=3, dtype=torch.float64,
                     rtol=tol, atol=tol).samples
        return x.mean(0), torch.cov(x.T)

    ref_mean, ref_cov = moments(1e-8)
    errors = []
    for tol in (1e-2, 1e-4, 1e-6):
        mean, cov = moments(tol)
        errors.append(max((mean - ref_mean).abs().max().item(), (cov - ref_cov).abs().max().item()))
    assert errors[1] < 0.1 * errors[0] and errors[2] < 0.1 * errors[1], errors
    assert errors[2] < 1e-4, errors
    # ... and the reference is the data law: mean 0, covariance 4.125 I (8 means at radius
    # 2 sqrt 2, variance 1/8), within the Monte-Carlo error of 300 samples (std 0.12 / 0.34).
    torch.testing.assert_close(ref_mean, torch.zeros(2, dtype=torch.float64), rtol=0, atol=0.4)
    torch.testing.assert_close(ref_cov, 4.125 * torch.eye(2, dtype=torch.float64),
                               rtol=0, atol=1.2)
