"""Convergence orders against a closed-form flow.

For one-Gaussian data N(m, diag(s^2)) on the rectified-flow path
x_t = t x_data + (1 - t) eps, the marginal is N(t m, std_t^2) per dimension
with std_t^2 = t^2 s^2 + (1 - t)^2. The velocity field that moves a Gaussian
along these marginals and is the conditional mean E[x_data - eps | x_t] is
affine, v(x, t) = m + (std_t' / std_t)(x - t m), std_t' = (t s^2 - (1 - t)) / std_t,
so the flow from x_0 = z (std_0 = 1) is x_t = t m + std_t z and ends at
x_1 = m + s z. ``test_closed_form_velocity_matches_oracle`` checks this
derivation against the oracle before the orders rely on it.
"""

import numpy as np
import pytest
import torch

from sfbench.data.gmm import GaussianMixture
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import RectifiedFlowSchedule, VPSchedule
from sfbench.solvers import SOLVERS, NoiseSource, ddim, dopri5, euler, uniform_grid

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


@pytest.mark.parametrize(("solver", "order"), [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_fixed_step_orders_on_rectified_flow(solver, order):
    oracle = gaussian_oracle(RectifiedFlowSchedule())
    noise, z = start()
    reference = exact_flow(z, 1.0)
    steps = [16, 32, 64]
    errors = endpoint_errors(solver, steps, oracle, z, noise, reference)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope + order) < 0.3, (solver, errors, slope)


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
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope + 1) < 0.3, (errors, slope)
