"""Single steps of the new solvers against their papers' formulas, written out independently."""

import math

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import DDPMSchedule, RectifiedFlowSchedule, VESchedule, VPSchedule
from sfbench.solvers import (
    NoiseSource,
    ddim,
    dpm_solver_pp_2m,
    edm_grid,
    edm_heun,
    heun,
    midpoint,
    pc,
    t_of_sigma_edm,
)


def oracle(schedule):
    return GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, schedule)


def start(n=64, std=1.0):
    noise = NoiseSource(seed=4, n_samples=n)
    return noise, noise.initial((2,), std, dtype=torch.float64)


def coeffs(schedule, t):
    c = schedule(torch.tensor(t, dtype=torch.float64))
    return float(c.alpha), float(c.sigma)


def grid(*times):
    return torch.tensor(times, dtype=torch.float64)


def test_midpoint_step():
    model = oracle(VPSchedule())
    noise, x = start()
    t, s = 0.3, 0.45
    h = s - t
    half = x + 0.5 * h * model.predict(x, t).velocity
    expected = x + h * model.predict(half, t + 0.5 * h).velocity
    torch.testing.assert_close(midpoint(model, x, grid(t, s), noise), expected)


# --- predictor-corrector -------------------------------------------------------------


def test_pc_step_is_euler_maruyama_then_song_langevin():
    # Song et al. 2021, Algorithm 5: eps_step = 2 alpha_i (r |z| / |g|)^2, at the typical
    # norms |z|^2 = d, |g|^2 = d / sigma^2 (see solvers.pc).
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start()
    t, s, snr = 0.5, 0.51, 0.2
    h = s - t
    g2 = float(schedule.diffusion_squared(torch.tensor(t, dtype=torch.float64)))
    a_t, sig_t = coeffs(schedule, t)
    a_s, sig_s = coeffs(schedule, s)
    pred = model.predict(x, t)
    dw = noise.step(t, s, x)
    x1 = x + h * (pred.velocity - 0.5 * g2 * pred.eps / sig_t) + math.sqrt(g2) * dw
    score = -model.predict(x1, s).eps / sig_s
    z = noise.step_normal(t, s, x, stream=1)
    d = x.shape[1]
    step = 2 * (a_t / a_s) ** 2 * (snr * math.sqrt(d) / (math.sqrt(d) / sig_s)) ** 2
    expected = x1 + step * score + math.sqrt(2 * step) * z
    got = pc(model, x, grid(t, s), noise, snr=snr)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("k", [1000, 400, 3])
def test_pc_reverse_diffusion_predictor_is_songs_vp_discretisation(k):
    # VP: f = (sqrt(1 - beta) - 1) x, G = sqrt(beta); x <- x - f + G^2 score + G z.
    schedule = DDPMSchedule()
    model = oracle(schedule)
    noise, x = start()
    betas = np.linspace(1e-4, 0.02, 1000)
    beta = betas[k - 1]
    t, s = 1 - k / 1000, 1 - (k - 1) / 1000
    _, sig_t = coeffs(schedule, t)
    score = -model.predict(x, t).eps / sig_t
    z = noise.step_normal(t, s, x)
    expected = x - (math.sqrt(1 - beta) - 1) * x + beta * score + math.sqrt(beta) * z
    got = pc(model, x, grid(t, s), noise, predictor="reverse_diffusion", corrector_steps=0)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_pc_corrector_vanishes_where_it_must():
    # No signal to keep at alpha_t = 0, no noise left at sigma_s = 0, and snr = 0.
    model = oracle(RectifiedFlowSchedule())
    noise, x = start()
    for times, options in ((grid(0.0, 0.2), {}), (grid(0.8, 1.0), {}),
                           (grid(0.4, 0.5), {"snr": 0.0})):
        with_corrector = pc(model, x, times, noise, corrector_steps=2, **options)
        without = pc(model, x, times, noise, corrector_steps=0)
        torch.testing.assert_close(with_corrector, without, rtol=0, atol=1e-12)
    # ... and acts in between
    moved = pc(model, x, grid(0.4, 0.5), noise) - pc(model, x, grid(0.4, 0.5), noise,
                                                      corrector_steps=0)
    assert moved.abs().mean() > 1e-3


@pytest.mark.parametrize(("options", "name"), [
    ({"predictor": "ancestral"}, "predictor"),
    ({"snr": -0.1}, "snr"),
    ({"snr": float("nan")}, "snr"),
    ({"corrector_steps": -1}, "corrector_steps"),
    ({"corrector_steps": 1.5}, "corrector_steps"),
])
def test_pc_options_are_validated(options, name):
    noise, x = start(4)
    with pytest.raises(ValueError, match=name):
        pc(oracle(VESchedule()), x, grid(0.0, 1.0), noise, **options)


# --- DPM-Solver++(2M) ----------------------------------------------------------------


def test_dpm_solver_first_step_is_ddim():
    for schedule in (VPSchedule(), RectifiedFlowSchedule(), VESchedule()):
        model = oracle(schedule)
        noise, x = start(std=schedule.prior_std())
        times = grid(schedule.t_start, 0.4)
        torch.testing.assert_close(dpm_solver_pp_2m(model, x, times, noise),
                                   ddim(model, x, times, noise))


def test_dpm_solver_second_step_is_lu_et_al_algorithm_2():
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start(std=schedule.prior_std())
    t0, t1, t2 = 0.2, 0.5, 0.65
    (a0, s0), (a1, s1), (a2, s2) = (coeffs(schedule, t) for t in (t0, t1, t2))
    lam0, lam1, lam2 = (math.log(a / s) for a, s in ((a0, s0), (a1, s1), (a2, s2)))
    d0 = model.predict(x, t0).x0
    x1 = s1 / s0 * x - a1 * (math.exp(-(lam1 - lam0)) - 1) * d0
    h, r = lam2 - lam1, (lam1 - lam0) / (lam2 - lam1)
    d1 = model.predict(x1, t1).x0
    d = (1 + 1 / (2 * r)) * d1 - 1 / (2 * r) * d0
    expected = s2 / s1 * x1 - a2 * (math.exp(-h) - 1) * d
    # The second step is also the last: by default (below 15 steps) it would be first order.
    got = dpm_solver_pp_2m(model, x, grid(t0, t1, t2), noise, lower_order_final=False)
    torch.testing.assert_close(got, expected)


def test_dpm_solver_steps_with_infinite_log_snr_are_first_order():
    # Rectified flow: lambda(0) = -inf and lambda(1) = +inf. The first step is DDIM, the
    # second (after an infinite h) and the last (h = inf) use the current x0 only.
    model = oracle(RectifiedFlowSchedule())
    noise, x = start()
    x1 = 0.4 * model.predict(x, 0.0).x0 + 0.6 * x  # DDIM from alpha = 0, sigma = 1
    p1 = model.predict(x1, 0.4)
    x2 = 0.7 * p1.x0 + 0.3 * p1.eps
    expected = model.predict(x2, 0.7).x0
    got = dpm_solver_pp_2m(model, x, grid(0.0, 0.4, 0.7, 1.0), noise)
    torch.testing.assert_close(got, expected)


def dpm_solver_by_hand(model, x, times, first_order_last):
    """Lu et al. 2022, Algorithm 2 on a path with finite lambda, written out step by step."""
    sched = model.schedule
    lams = [math.log(a / s) for a, s in (coeffs(sched, t) for t in times.tolist())]
    x0_prev = None
    for i, (t, s) in enumerate(zip(times[:-1].tolist(), times[1:].tolist(), strict=True)):
        (_, sig_t), (a_s, sig_s) = coeffs(sched, t), coeffs(sched, s)
        x0 = model.predict(x, t).x0
        h = lams[i + 1] - lams[i]
        d = x0
        if x0_prev is not None and not (first_order_last and i == len(times) - 2):
            r = (lams[i] - lams[i - 1]) / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev
        x = sig_s / sig_t * x - a_s * (math.exp(-h) - 1) * d
        x0_prev = x0
    return x


@pytest.mark.parametrize("steps", [3, 14, 15, 20])
def test_dpm_solver_final_step_is_first_order_below_15_steps(steps):
    # lower_order_final None (the default) is diffusers' rule: first order below 15 steps.
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start(std=schedule.prior_std())
    times = torch.linspace(schedule.t_start, schedule.t_end, steps + 1, dtype=torch.float64)
    by_hand = {flag: dpm_solver_by_hand(model, x, times, flag) for flag in (True, False)}
    assert (by_hand[True] - by_hand[False]).abs().max() > 1e-3  # the two differ
    for option, flag in ((True, True), (False, False), (None, steps < 15)):
        got = dpm_solver_pp_2m(model, x, times, noise, lower_order_final=option)
        torch.testing.assert_close(got, by_hand[flag], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bad", [1, "auto", 0.0])
def test_dpm_solver_lower_order_final_is_validated(bad):
    noise, x = start(4)
    with pytest.raises(ValueError, match=r"lower_order_final.*None.*True or False"):
        dpm_solver_pp_2m(oracle(VPSchedule()), x, grid(0.0, 0.3, 0.5), noise,
                         lower_order_final=bad)


# --- EDM Heun ------------------------------------------------------------------------


def karras_heun_by_hand(model, x, times):
    """Karras et al. 2022, Algorithm 1 on a VE path (alpha = 1, sigma~ = sigma)."""
    sched = model.schedule
    for t, s in zip(times[:-1].tolist(), times[1:].tolist(), strict=True):
        sig, sig_next = coeffs(sched, t)[1], coeffs(sched, s)[1]
        d = (x - model.predict(x, t).x0) / sig
        x_euler = x + (sig_next - sig) * d
        d2 = (x_euler - model.predict(x_euler, s).x0) / sig_next
        x = x + (sig_next - sig) * 0.5 * (d + d2)
    return x


def test_edm_heun_without_churn_is_karras_algorithm_1_on_ve():
    schedule = VESchedule()
    model = oracle(schedule)
    noise, x = start(std=schedule.prior_std())
    times = edm_grid(12, schedule)
    torch.testing.assert_close(edm_heun(model, x, times, noise),
                               karras_heun_by_hand(model, x, times))


def test_edm_heun_without_churn_is_heun_in_the_rescaled_variable_on_vp():
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start(std=schedule.prior_std())
    t, s = 0.3, 0.5
    (a_t, s_t), (a_s, s_s) = coeffs(schedule, t), coeffs(schedule, s)
    sig, sig_next = s_t / a_t, s_s / a_s
    y = x / a_t
    d = (y - model.predict(x, t).x0) / sig
    y_euler = y + (sig_next - sig) * d
    d2 = (y_euler - model.predict(a_s * y_euler, s).x0) / sig_next
    expected = a_s * (y + (sig_next - sig) * 0.5 * (d + d2))
    torch.testing.assert_close(edm_heun(model, x, grid(t, s), noise), expected)


@pytest.mark.parametrize("churn", [0.3, 5.0])
def test_edm_heun_churn_step_is_karras_algorithm_2(churn):
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start(std=schedule.prior_std())
    t, s, s_noise = 0.3, 0.5, 1.007
    gamma = min(churn / 1, math.sqrt(2) - 1)  # one step: N = 1
    (a_t, s_t), (a_s, s_s) = coeffs(schedule, t), coeffs(schedule, s)
    sig, sig_next = s_t / a_t, s_s / a_s
    sig_hat = sig * (1 + gamma)
    t_hat = float(t_of_sigma_edm(schedule, sig_hat))
    assert 0 < t_hat < t
    a_hat = coeffs(schedule, t_hat)[0]
    z = noise.step_normal(t, s, x)
    y_hat = x / a_t + math.sqrt(sig_hat**2 - sig**2) * s_noise * z
    d = (y_hat - model.predict(a_hat * y_hat, t_hat).x0) / sig_hat
    y_euler = y_hat + (sig_next - sig_hat) * d
    d2 = (y_euler - model.predict(a_s * y_euler, s).x0) / sig_next
    expected = a_s * (y_hat + (sig_next - sig_hat) * 0.5 * (d + d2))
    got = edm_heun(model, x, grid(t, s), noise, s_churn=churn, s_noise=s_noise)
    torch.testing.assert_close(got, expected)
    # churn only inside [s_tmin, s_tmax] (in sigma / alpha)
    outside = edm_heun(model, x, grid(t, s), noise, s_churn=churn, s_tmax=0.5 * sig)
    torch.testing.assert_close(outside, edm_heun(model, x, grid(t, s), noise))


def test_edm_heun_first_step_of_a_flow_path_is_heun_in_t():
    model = oracle(RectifiedFlowSchedule())
    noise, x = start()
    times = grid(0.0, 0.3)
    got = edm_heun(model, x, times, noise, s_churn=10.0)  # no churn where alpha = 0
    torch.testing.assert_close(got, heun(model, x, times, noise))


@pytest.mark.parametrize("churn", [0.0, 0.3])
def test_edm_heun_last_step_onto_sigma_zero_is_an_euler_step_in_sigma_tilde(churn):
    # Rectified flow ends at sigma = 0: Karras et al. 2022, Algorithm 2 makes no correction
    # there, y_{N} = y_hat + (0 - sigma_hat) d. Here on the last step of a 3-step grid, the
    # first two steps taken by the solver itself (their Heun steps are tested above).
    model = oracle(RectifiedFlowSchedule())
    noise, x = start()
    # gamma = S_churn / N: the same per-step churn on the 2-step head as on the 3-step grid
    head = edm_heun(model, x, grid(0.0, 0.3, 0.6), noise, s_churn=churn * 2 / 3)
    t = 0.6
    sig = (1 - t) / t
    gamma = min(churn / 3, math.sqrt(2) - 1)  # N = 3 steps
    sig_hat = sig * (1 + gamma)
    t_hat = 1 / (1 + sig_hat)  # sigma~ = (1 - t) / t on rectified flow
    y_hat = head / t
    if churn:
        y_hat = y_hat + math.sqrt(sig_hat**2 - sig**2) * noise.step_normal(t, 1.0, head)
    d = (y_hat - model.predict(t_hat * y_hat, t_hat).x0) / sig_hat
    expected = y_hat + (0.0 - sig_hat) * d  # alpha = 1 at t = 1: x = y
    got = edm_heun(model, x, grid(0.0, 0.3, 0.6, 1.0), noise, s_churn=churn)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_edm_heun_single_step_of_rectified_flow_is_euler_onto_the_data():
    # From alpha = 0 to sigma = 0 in one step: Euler in t, the limit of Euler in sigma~
    # (the DDIM step, x_1 = x0_hat).
    model = oracle(RectifiedFlowSchedule())
    noise, x = start()
    got = edm_heun(model, x, grid(0.0, 1.0), noise)
    torch.testing.assert_close(got, model.predict(x, 0.0).x0)


def test_edm_heun_churn_cap_keeps_the_model_inside_the_interval():
    # At the first step of VP, sigma~ is already the largest there is: churn is capped off.
    schedule = VPSchedule()
    model = oracle(schedule)
    noise, x = start(std=schedule.prior_std())
    times = edm_grid(6, schedule)[:2]
    torch.testing.assert_close(edm_heun(model, x, times, noise, s_churn=50.0),
                               edm_heun(model, x, times, noise))


@pytest.mark.parametrize(("options", "name"), [
    ({"s_churn": -1.0}, "s_churn"),
    ({"s_noise": float("inf")}, "s_noise"),
    ({"s_tmin": 2.0, "s_tmax": 1.0}, "s_tmax"),
])
def test_edm_heun_options_are_validated(options, name):
    noise, x = start(4)
    with pytest.raises(ValueError, match=name):
        edm_heun(oracle(VPSchedule()), x, grid(0.0, 0.5), noise, **options)
