"""The analytic oracle against Monte Carlo, autograd and the continuity equation."""

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.divergence import exact_divergence
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import SCHEDULES, RectifiedFlowSchedule, VESchedule, VPSchedule

DATASETS = ["8gaussians", "gmm_aniso"]
# Query times where the importance weights keep an effective sample size in the hundreds or
# more out of 2e5 draws (the weights concentrate as sigma_t -> 0).
MC_CASES = [
    (RectifiedFlowSchedule, (0.3, 0.6, 0.85)),
    (VPSchedule, (0.3, 0.7, 0.9)),
    (VESchedule, (0.3, 0.5, 0.65)),
]


def _mixture(name):
    return get_dataset(name).mixture


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize(("schedule_cls", "times"), MC_CASES, ids=[c.name for c, _ in MC_CASES])
def test_conditional_expectations_match_importance_sampling(name, schedule_cls, times):
    # E[f | x_t = q] = int f(x, eps(x)) N(q; alpha x, sigma^2 I) p(x) dx / p_t(q): a
    # self-normalised importance estimate over data draws x_i with weights
    # N(q; alpha x_i, sigma^2 I), where eps_i = (q - alpha x_i) / sigma.
    mixture, schedule = _mixture(name), schedule_cls()
    oracle = GaussianMixtureOracle(mixture, schedule)
    rng = np.random.default_rng(11)
    data = torch.from_numpy(mixture.sample(200_000, rng))
    gen = torch.Generator().manual_seed(3)
    for t in times:
        c = schedule(torch.tensor(t, dtype=torch.float64))
        q = c.alpha * torch.from_numpy(mixture.sample(6, rng))
        q = q + c.sigma * torch.randn(6, 2, generator=gen, dtype=torch.float64)
        logw = -((q[:, None, :] - c.alpha * data[None]) ** 2).sum(-1) / (2 * c.sigma**2)
        w = torch.softmax(logw, dim=1)  # [6, M]
        assert (1.0 / w.pow(2).sum(1)).min() > 300, "too few effective samples for a fair test"
        pred = oracle.predict(q, t)
        eps_i = (q[:, None, :] - c.alpha * data[None]) / c.sigma  # [6, M, 2]
        for exact, f in ((pred.x0, data[None].expand_as(eps_i)), (pred.eps, eps_i)):
            est = (w[..., None] * f).sum(1)
            # Delta-method standard error of a self-normalised estimate.
            se = (w[..., None].pow(2) * (f - est[:, None]).pow(2)).sum(1).sqrt()
            z = (exact - est).abs() / se
            assert z.max() < 5.0, f"t={t}: oracle off by {z.max():.1f} standard errors"


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_score_is_gradient_of_log_prob(name, schedule_name):
    schedule = SCHEDULES[schedule_name]()
    oracle = GaussianMixtureOracle(_mixture(name), schedule)
    x = 3.0 * torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.rand(50, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = 0.05 + 0.9 * t
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(oracle.log_prob(x, t).sum(), x)
    torch.testing.assert_close(oracle.score(x.detach(), t), grad, rtol=1e-9, atol=1e-9)
    # The Prediction's score, -eps / sigma, is the same field where sigma > 0.
    torch.testing.assert_close(oracle.predict(x.detach(), t).score, grad, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", DATASETS)
def test_score_at_data_end_of_flow_path_is_the_data_score(name):
    # sigma_1 = 0 on rectified flow: oracle.score stays finite and equals grad log p_data.
    mixture = _mixture(name)
    oracle = GaussianMixtureOracle(mixture, RectifiedFlowSchedule())
    x = torch.randn(20, 2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(mixture.log_prob(x).sum(), x)
    torch.testing.assert_close(oracle.score(x.detach(), 1.0), grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_prediction_pair_reconstructs_x_t(name, schedule_name):
    schedule = SCHEDULES[schedule_name]()
    oracle = GaussianMixtureOracle(_mixture(name), schedule)
    x = 2.0 * torch.randn(40, 2, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(40, dtype=torch.float64)
    pred = oracle.predict(x, t)
    c = pred.coeffs
    torch.testing.assert_close(c.alpha[:, None] * pred.x0 + c.sigma[:, None] * pred.eps, x)


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_velocity_solves_the_continuity_equation(name, schedule_name):
    # d/dt p_t + div(p_t v) = 0  <=>  d/dt log p_t(x) = -div v(x) - v(x) . grad log p_t(x).
    # This ties the oracle velocity to its log-density: the premise of the NLL computation.
    schedule = SCHEDULES[schedule_name]()
    oracle = GaussianMixtureOracle(_mixture(name), schedule)
    gen = torch.Generator().manual_seed(5)
    x = 2.0 * torch.randn(30, 2, dtype=torch.float64, generator=gen)
    # Off the DDPM knots t = 1 - k/1000, where its interpolated schedule has a kink.
    t = 0.1 + 0.8 * torch.rand(30, dtype=torch.float64, generator=gen)
    t = (torch.floor(t * 1000) + 0.5) / 1000
    t.requires_grad_(True)
    (dlogp_dt,) = torch.autograd.grad(oracle.log_prob(x, t).sum(), t)
    v, div = exact_divergence(lambda y: oracle.predict(y, t.detach()).velocity, x)
    rhs = -div - (v * oracle.score(x, t.detach())).sum(1)
    torch.testing.assert_close(dlogp_dt, rhs, rtol=1e-7, atol=1e-7)
