"""Single steps of the stochastic solvers against their formulas, written out independently."""

import math

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import DDPMSchedule, RectifiedFlowSchedule, VPSchedule
from sfbench.solvers import NoiseSource, ddim, ddpm_ancestral, dopri5, euler_maruyama
from sfbench.solvers.ddim import posterior_std


def oracle(schedule):
    return GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, schedule)


def start(n=64):
    noise = NoiseSource(seed=4, n_samples=n)
    return noise, noise.initial((2,), dtype=torch.float64)


@pytest.mark.parametrize("k", [1000, 500, 2])
def test_ancestral_step_is_ho_et_al_algorithm_2(k):
    # x_{k-1} = (x_k - beta_k / sqrt(1 - abar_k) eps) / sqrt(1 - beta_k) + sqrt(beta_tilde_k) z
    schedule = DDPMSchedule()
    model = oracle(schedule)
    noise, x = start()
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.concatenate([[1.0], np.cumprod(1 - betas)])  # abar[k], abar[0] = 1
    beta = betas[k - 1]
    beta_tilde = (1 - abar[k - 1]) / (1 - abar[k]) * beta
    t, s = 1 - k / 1000, 1 - (k - 1) / 1000
    eps = model.predict(x, t).eps
    z = noise.step_normal(t, s, x)
    expected = (x - beta / math.sqrt(1 - abar[k]) * eps) / math.sqrt(1 - beta)
    expected = expected + math.sqrt(beta_tilde) * z
    got = ddpm_ancestral(model, x, torch.tensor([t, s], dtype=torch.float64), noise)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_posterior_std_edge_cases():
    assert posterior_std(0.0, 1.0, 0.3, 0.7) == 0.7  # alpha_t = 0: x_t says nothing about x0
    assert posterior_std(1.0, 0.0, 1.0, 0.0) == 0.0  # sigma_t = 0: already at the data
    # DDPM: beta_tilde = (1 - abar_{k-1}) / (1 - abar_k) beta_k
    a_k, a_km1, beta = 0.6, 0.62, 1 - 0.6 / 0.62
    got = posterior_std(math.sqrt(a_k), math.sqrt(1 - a_k), math.sqrt(a_km1), math.sqrt(1 - a_km1))
    assert math.isclose(got**2, (1 - a_km1) / (1 - a_k) * beta, rel_tol=1e-12)


def test_ddim_eta_is_validated():
    noise, x = start(4)
    grid = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="eta"):
        ddim(oracle(RectifiedFlowSchedule()), x, grid, noise, eta=1.5)


def test_dopri5_tolerances_are_validated():
    noise, x = start(4)
    grid = torch.tensor([0.0, 1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="rtol"):
        dopri5(oracle(RectifiedFlowSchedule()), x, grid, noise, rtol=0.0)


def em_step_by_hand(model, x, t, h, gamma2, z):
    pred = model.predict(x, t)
    sigma = float(model.schedule(torch.tensor(t, dtype=torch.float64)).sigma)
    score = -pred.eps / sigma
    return x + h * (pred.velocity + 0.5 * gamma2 * score) + math.sqrt(gamma2 * h) * z


def test_euler_maruyama_uses_the_paths_diffusion_where_the_cap_does_not_bind():
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start()
    t, h = 0.5, 0.01
    g2 = float(schedule.diffusion_squared(torch.tensor(t, dtype=torch.float64)))
    sigma = float(schedule(torch.tensor(t, dtype=torch.float64)).sigma)
    assert g2 < sigma**2 / h  # the cap is not active here
    got = euler_maruyama(model, x, torch.tensor([t, t + h], dtype=torch.float64), noise)
    dw = noise.step(t, t + h, x)
    torch.testing.assert_close(got, em_step_by_hand(model, x, t, h, g2, dw / math.sqrt(h)))


def test_euler_maruyama_caps_the_infinite_diffusion_at_alpha_zero():
    schedule = RectifiedFlowSchedule()
    model = oracle(schedule)
    noise, x = start()
    h = 0.25
    assert math.isinf(float(schedule.diffusion_squared(torch.tensor(0.0, dtype=torch.float64))))
    got = euler_maruyama(model, x, torch.tensor([0.0, h], dtype=torch.float64), noise)
    z = noise.step_normal(0.0, h, x)
    expected = em_step_by_hand(model, x, 0.0, h, 1.0 / h, z)  # gamma^2 = sigma_0^2 / h
    torch.testing.assert_close(got, expected)
    assert torch.isfinite(got).all()


def test_euler_maruyama_reaches_sigma_zero_without_nan():
    # The last step of rectified flow starts just below t = 1 and ends at sigma = 0.
    model = oracle(RectifiedFlowSchedule())
    noise, x = start()
    grid = torch.tensor([0.0, 0.5, 0.999, 1.0], dtype=torch.float64)
    assert torch.isfinite(euler_maruyama(model, x, grid, noise)).all()
