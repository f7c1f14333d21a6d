"""Stochastic and DDIM samplers reproduce the data distribution.

On one-Gaussian data N(m, diag(s^2)) with the exact oracle, the samples,
standardised as (x - m) / s, must have mean 0 and covariance I within
Monte-Carlo error (4000 samples: standard errors about 0.016 for the mean
and 0.022 for the variances) plus the solvers' O(1/steps) bias (ancestral
sampling with a posterior-mean model under-disperses by about 10/steps).
A sign error in the Langevin term, a missing noise term or a wrong
posterior std moves these statistics far outside the tolerance.
"""

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.data.gmm import GaussianMixture
from sfbench.eval.distances import wasserstein2
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.sampling import generate

MEAN = np.array([1.0, -2.0])
STD = np.array([0.5, 2.0])
N_SAMPLES = 4000
STEPS = 500


# The VE path (dsm) is left out of the DDIM case on purpose: its prior
# N(0, sigma_max^2 I) ignores the data mean, and a deterministic sampler carries
# that start-up error (m / sigma_max = 0.1-0.2 standardised) to the end.
CASES = [
    (method, solver)
    for method in ("ddpm", "rectified_flow", "probability_flow", "cfm")
    for solver in ("euler_maruyama", "ddpm_ancestral", "ddim")
] + [("dsm", "euler_maruyama"), ("dsm", "ddpm_ancestral")]


# The solvers added with the Brownian noise, at fewer steps (they are second order, or
# corrected): predictor-corrector with both predictors, EDM's Heun with churn. Measured
# standardised covariances 0.98-1.06; a corrector with per-sample norms gave 18.
NEW_CASES = [
    (method, "pc", 100, {}) for method in ("dsm", "probability_flow", "rectified_flow")
] + [
    ("dsm", "pc", 100, {"predictor": "reverse_diffusion"}),
    ("ddpm", "pc", 100, {"predictor": "reverse_diffusion", "corrector_steps": 2}),
] + [
    (method, "edm_heun", 50, {"s_churn": 30.0, "grid": "edm"})
    for method in ("dsm", "probability_flow", "rectified_flow")
]


def check_mean_and_covariance(method, solver, steps, options):
    mixture = GaussianMixture(np.ones(1), MEAN[None], np.diag(STD**2)[None])
    oracle = GaussianMixtureOracle(mixture, METHODS[method].schedule())
    result = generate(oracle, solver, steps, N_SAMPLES, seed=11, dtype=torch.float64, **options)
    z = (result.samples.numpy() - MEAN) / STD
    assert np.all(np.abs(z.mean(0)) < 0.08), z.mean(0)
    assert np.all(np.abs(np.cov(z.T) - np.eye(2)) < 0.1), np.cov(z.T)


@pytest.mark.parametrize(("method", "solver"), CASES)
def test_mean_and_covariance(method, solver):
    check_mean_and_covariance(method, solver, STEPS, {})


@pytest.mark.parametrize(("method", "solver", "steps", "options"), NEW_CASES)
def test_mean_and_covariance_new_solvers(method, solver, steps, options):
    check_mean_and_covariance(method, solver, steps, options)


def test_stochastic_samplers_do_not_collapse_to_the_ode():
    # Same starting noise: ancestral and Euler-Maruyama samples must differ from
    # the deterministic DDIM ones by about a data std, not by roundoff.
    mixture = GaussianMixture(np.ones(1), MEAN[None], np.diag(STD**2)[None])
    oracle = GaussianMixtureOracle(mixture, METHODS["ddpm"].schedule())
    ode = generate(oracle, "ddim", 50, 500, seed=2, dtype=torch.float64).samples
    runs = {"ddpm_ancestral": {}, "euler_maruyama": {}, "pc": {}, "edm_heun": {"s_churn": 30.0}}
    for solver, options in runs.items():
        sde = generate(oracle, solver, 50, 500, seed=2, dtype=torch.float64, **options).samples
        spread = ((sde - ode) / torch.tensor(STD)).std(0)
        assert torch.all(spread > 0.3), (solver, spread)


def test_dpm_solver_pp_2m_few_steps_on_the_default_grid():
    # Issue 15: at 5 uniform steps on a DDPM model, DPM-Solver++(2M) extrapolated x0 on its
    # last, steep step (lambda jumps by 4.3, against 1.0 on the step before) and landed
    # W2 = 1.47 from the data; with a first-order final step below 15 steps (the default,
    # Lu et al. 2022 / diffusers' lower_order_final) it is 0.31. Measured: 2000 samples
    # against 2000 exact draws, whose own W2 to other draws of 2000 is 0.17-0.19.
    mixture = get_dataset("8gaussians").mixture
    oracle = GaussianMixtureOracle(mixture, METHODS["ddpm"].schedule())
    samples = generate(oracle, "dpm_solver_pp_2m", 5, 2000, seed=1, dtype=torch.float64).samples
    exact = mixture.sample(2000, np.random.default_rng(0))
    assert wasserstein2(samples, exact) < 0.4
