"""Schedules: boundary values, derivatives, the DDPM table and the SDE diffusion g^2."""

import math

import pytest
import torch

from sfbench.paths import SCHEDULES, DDPMSchedule, VESchedule, VPSchedule

F64 = torch.float64
ALL = sorted(SCHEDULES)


def _t(values):
    return torch.as_tensor(values, dtype=F64)


def _interior_times(schedule, n=64, seed=0):
    """Times in (0.01, 0.99), kept off the DDPM knots t = 1 - k/T where its slope jumps."""
    t = 0.01 + 0.98 * torch.rand(n, dtype=F64, generator=torch.Generator().manual_seed(seed))
    if isinstance(schedule, DDPMSchedule):
        t = schedule.t_of_step(torch.floor(schedule.step_of_t(t)) + 0.5)
    return t


def _vp_log_alpha(s, beta_min=0.1, beta_max=20.0):
    return -0.5 * (beta_min * s + 0.5 * (beta_max - beta_min) * s**2)


def _ddpm_alphabar(num_steps=1000):
    betas = torch.linspace(1e-4, 0.02, num_steps, dtype=F64)
    return torch.cumprod(1.0 - betas, 0)


# (alpha, sigma) at t = 0 (noise end) and t = 1 (data end), from each paper's definition.
BOUNDARIES = {
    "rectified_flow": ((0.0, 1.0), (1.0, 0.0)),
    "cfm_ot": ((0.0, 1.0), (1.0, 1e-4)),
    "vp": (
        (math.exp(_vp_log_alpha(1.0)), math.sqrt(1 - math.exp(2 * _vp_log_alpha(1.0)))),
        (1.0, 0.0),
    ),
    "ddpm": (
        (math.sqrt(_ddpm_alphabar()[-1]), math.sqrt(1 - _ddpm_alphabar()[-1])),
        (1.0, 0.0),
    ),
    "ve": ((1.0, 10.0), (1.0, 0.01)),
}


def test_every_schedule_has_boundary_values():
    assert set(BOUNDARIES) == set(SCHEDULES)


@pytest.mark.parametrize("name", ALL)
def test_boundary_values(name):
    s = SCHEDULES[name]()
    out = s(_t([0.0, 1.0]))
    (a0, s0), (a1, s1) = BOUNDARIES[name]
    torch.testing.assert_close(out.alpha, _t([a0, a1]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.sigma, _t([s0, s1]), rtol=1e-12, atol=1e-12)
    assert s.prior_std() == pytest.approx(s0, rel=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_signal_to_noise_ratio_increases_toward_data(name):
    # Strictly increasing alpha / sigma is what makes the velocity -> (x0, eps) conversion
    # invertible (its determinant alpha d_sigma - sigma d_alpha must not vanish).
    s = SCHEDULES[name]()
    out = s(torch.linspace(0.0, s.t_end, 2001, dtype=F64))
    snr = out.alpha / out.sigma
    assert (snr[1:] > snr[:-1]).all()
    det = out.alpha * out.d_sigma - out.sigma * out.d_alpha
    assert (det < 0).all()


def _grad(y, t):
    """dy/dt per element (y[i] depends on t[i] only); zero where y does not depend on t."""
    if not y.requires_grad:  # e.g. VE's alpha = 1
        return torch.zeros_like(t)
    return torch.autograd.grad(y.sum(), t, retain_graph=True)[0]


@pytest.mark.parametrize("name", ALL)
def test_derivatives_match_autograd_and_finite_differences(name):
    s = SCHEDULES[name]()
    t = _interior_times(s).requires_grad_(True)
    out = s(t)
    d_alpha, d_sigma = (_grad(y, t) for y in (out.alpha, out.sigma))
    torch.testing.assert_close(out.d_alpha.detach(), d_alpha, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.d_sigma.detach(), d_sigma, rtol=1e-10, atol=1e-12)
    # Central differences, h well inside one DDPM interval (width 1e-3).
    h, t = 1e-7, t.detach()
    hi, lo = s(t + h), s(t - h)
    torch.testing.assert_close(
        out.d_alpha.detach(), (hi.alpha - lo.alpha) / (2 * h), rtol=1e-6, atol=1e-8
    )
    torch.testing.assert_close(
        out.d_sigma.detach(), (hi.sigma - lo.sigma) / (2 * h), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("name", ALL)
def test_diffusion_squared_matches_sde_formula_numerically(name):
    # In diffusion time s = 1 - t: g^2 = d sigma^2/ds - 2 f sigma^2 with f = d log alpha / ds,
    # both derivatives taken here by central differences of the schedule's alpha and sigma.
    sched = SCHEDULES[name]()
    t = _interior_times(sched, seed=1)
    h = 1e-6

    def at_s(s_):
        out = sched(1.0 - s_)
        return out.alpha, out.sigma

    s = 1.0 - t
    (a_hi, sg_hi), (a_lo, sg_lo) = at_s(s + h), at_s(s - h)
    dsig2_ds = (sg_hi**2 - sg_lo**2) / (2 * h)
    f = (torch.log(a_hi) - torch.log(a_lo)) / (2 * h)
    g2 = dsig2_ds - 2 * f * sched(t).sigma ** 2
    torch.testing.assert_close(sched.diffusion_squared(t), g2, rtol=1e-6, atol=1e-8)


def test_vp_diffusion_squared_is_beta():
    # VP-SDE dx = -beta/2 x ds + sqrt(beta) dW: g^2 = beta(s) = beta_min + s (beta_max - beta_min).
    sched = VPSchedule()
    t = _t([0.0, 0.3, 0.7, 0.99])
    torch.testing.assert_close(sched.diffusion_squared(t), 0.1 + (1 - t) * 19.9, rtol=1e-10, atol=0)


def test_ve_diffusion_squared_closed_form():
    # alpha = 1, sigma = sigma_min r^(1 - t): g^2 = d sigma^2 / ds = 2 sigma^2 log r.
    sched = VESchedule()
    t = _t([0.0, 0.5, 1.0])
    expected = 2 * sched(t).sigma ** 2 * math.log(10.0 / 0.01)
    torch.testing.assert_close(sched.diffusion_squared(t), expected, rtol=1e-12, atol=0)


def test_ddpm_alphabar_exact_at_integer_steps():
    sched = DDPMSchedule()
    k = torch.arange(0, 1001)
    out = sched(sched.t_of_step(k))
    alphabar = torch.cat([torch.ones(1, dtype=F64), _ddpm_alphabar()])
    torch.testing.assert_close(out.alpha**2, alphabar, rtol=1e-12, atol=0)
    torch.testing.assert_close(out.sigma**2, 1.0 - alphabar, rtol=1e-10, atol=1e-15)


def test_ddpm_step_time_maps_are_inverse():
    sched = DDPMSchedule(num_steps=50)
    k = torch.arange(0, 51, dtype=F64)
    torch.testing.assert_close(sched.step_of_t(sched.t_of_step(k)), k)
    t = torch.rand(20, dtype=F64)
    torch.testing.assert_close(sched.t_of_step(sched.step_of_t(t)), t)
    assert float(sched.t_of_step(0)) == 1.0 and float(sched.t_of_step(50)) == 0.0
    assert sched.t_end == pytest.approx(float(sched.t_of_step(1)))


def test_schedules_keep_float32():
    for name in ALL:
        out = SCHEDULES[name]()(torch.rand(5))
        assert all(v.dtype == torch.float32 for v in vars(out).values()), name


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (VPSchedule, {"beta_min": 2.0, "beta_max": 1.0}),
        (VESchedule, {"sigma_min": 0.0}),
        (DDPMSchedule, {"num_steps": 0}),
    ],
)
def test_invalid_settings_raise(cls, kwargs):
    with pytest.raises(ValueError):
        cls(**kwargs)
