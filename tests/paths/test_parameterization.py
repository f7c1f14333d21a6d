"""Conversions between x0, eps, score and velocity: round trips and conditional targets."""

import itertools

import pytest
import torch

from sfbench.paths import SCHEDULES, TARGETS, Prediction, conditional_target, convert, to_x0_eps
from sfbench.paths.parameterization import batch_coef

F64 = torch.float64
ALL = sorted(SCHEDULES)


def _setup(name, n=64, seed=0):
    """Random (x0, eps, t) on an interior t range, where every conversion is well conditioned."""
    gen = torch.Generator().manual_seed(seed)
    sched = SCHEDULES[name]()
    t = 0.05 + 0.9 * torch.rand(n, dtype=F64, generator=gen)
    x0 = 2.0 * torch.randn(n, 2, dtype=F64, generator=gen)
    eps = torch.randn(n, 2, dtype=F64, generator=gen)
    c = sched(t)
    x_t = batch_coef(c.alpha, x0) * x0 + batch_coef(c.sigma, eps) * eps
    return sched, t, x0, eps, c, x_t


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("source", TARGETS)
def test_every_target_recovers_the_pair(name, source):
    _, _, x0, eps, c, x_t = _setup(name)
    value = Prediction(x_t=x_t, x0=x0, eps=eps, coeffs=c).get(source)
    x0_hat, eps_hat = to_x0_eps(source, value, x_t, c)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(eps_hat, eps, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(("source", "target"), list(itertools.permutations(TARGETS, 2)))
def test_conversion_round_trips(name, source, target):
    _, _, x0, eps, c, x_t = _setup(name)
    truth = Prediction(x_t=x_t, x0=x0, eps=eps, coeffs=c)
    converted = convert(source, truth.get(source), x_t, c, target)
    torch.testing.assert_close(converted, truth.get(target), rtol=1e-8, atol=1e-8)
    back = convert(target, converted, x_t, c, source)
    torch.testing.assert_close(back, truth.get(source), rtol=1e-8, atol=1e-8)


def test_closed_forms_on_rectified_flow():
    # alpha = t, sigma = 1 - t: velocity = x0 - eps, score = -eps / (1 - t).
    _, t, x0, eps, c, x_t = _setup("rectified_flow")
    pred = Prediction(x_t=x_t, x0=x0, eps=eps, coeffs=c)
    torch.testing.assert_close(pred.velocity, x0 - eps)
    torch.testing.assert_close(pred.score, -eps / (1 - t)[:, None])


@pytest.mark.parametrize("name", ALL)
def test_conditional_velocity_is_time_derivative_of_path(name):
    sched, t, x0, eps, _, _ = _setup(name)
    if name == "ddpm":  # off the knots, where the interpolated schedule is differentiable
        t = sched.t_of_step(torch.floor(sched.step_of_t(t)) + 0.5)
    t = t.clone().requires_grad_(True)
    c = sched(t)
    x_t = batch_coef(c.alpha, x0) * x0 + batch_coef(c.sigma, eps) * eps
    # x_t[i] depends on t[i] only, so the gradient of the column sum is the per-sample d/dt.
    dxdt = torch.stack(
        [torch.autograd.grad(x_t[:, j].sum(), t, retain_graph=True)[0] for j in range(2)], 1
    )
    target = conditional_target("velocity", x0, eps, sched(t.detach()))
    torch.testing.assert_close(target, dxdt, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_conditional_targets_of_the_other_kinds(name):
    # x0 and eps are the draws themselves; the conditional score is
    # grad_x log N(x; alpha x0, sigma^2 I) at x_t, i.e. -eps / sigma.
    _, _, x0, eps, c, x_t = _setup(name)
    torch.testing.assert_close(conditional_target("x0", x0, eps, c), x0)
    torch.testing.assert_close(conditional_target("eps", x0, eps, c), eps)
    x = x_t.clone().requires_grad_(True)
    sigma = batch_coef(c.sigma, x)
    logp = -0.5 * ((x - batch_coef(c.alpha, x) * x0) / sigma).pow(2).sum()
    (grad,) = torch.autograd.grad(logp, x)
    torch.testing.assert_close(conditional_target("score", x0, eps, c), grad)


@pytest.mark.parametrize("name", ["rectified_flow", "cfm_ot"])
def test_conversions_stay_finite_at_the_ends_of_flow_paths(name):
    # alpha = 0 at t = 0 and sigma = 0 (rectified flow) at t = 1: the divisions must give
    # finite limits, not NaN, for the targets a flow model is sampled with.
    sched = SCHEDULES[name]()
    x_t = torch.randn(8, 2, dtype=F64)
    out = torch.randn(8, 2, dtype=F64)
    for t in (0.0, 1.0):
        c = sched(torch.full((8,), t, dtype=F64))
        for source, target in itertools.product(TARGETS, TARGETS):
            assert torch.isfinite(convert(source, out, x_t, c, target)).all(), (t, source, target)


def test_unknown_target_is_rejected():
    _, _, x0, eps, c, x_t = _setup("vp", n=2)
    with pytest.raises(ValueError, match="unknown prediction target 'v'"):
        to_x0_eps("v", x0, x_t, c)
    with pytest.raises(ValueError, match="valid: x0, eps, score, velocity"):
        Prediction(x_t=x_t, x0=x0, eps=eps, coeffs=c).get("noise")
