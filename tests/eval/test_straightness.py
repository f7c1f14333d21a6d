"""Straightness (Liu et al. 2023), path energy ratio and Tong et al. (2024)'s normalized path
energy of ODE flows."""

import json
import math

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.data.gmm import GaussianMixture
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.eval.straightness import normalized_path_energy, straightness, trapezoid_weights
from sfbench.paths import RectifiedFlowSchedule, Schedule, ScheduleOutput, VPSchedule
from sfbench.solvers import NoiseSource
from sfbench.train import TrainConfig, train

MEAN = np.array([1.0, -2.0])


def unit_gaussian():
    """N(m, I): the data has the prior's covariance."""
    return GaussianMixture(np.ones(1), MEAN[None], np.eye(2)[None])


class LinearVariancePreserving(Schedule):
    """alpha = t, sigma = sqrt(1 - t^2): for N(m, I) data the marginals are N(t m, I), so
    the flow is the translation x_t = z + t m, straight at constant speed."""

    name = "linear_vp"
    t_end = 0.999  # d_sigma is infinite at t = 1

    def __call__(self, t):
        sigma = torch.sqrt(1.0 - t**2)
        return ScheduleOutput(alpha=t, sigma=sigma, d_alpha=torch.ones_like(t), d_sigma=-t / sigma)


def test_a_translation_flow_has_zero_straightness():
    oracle = GaussianMixtureOracle(unit_gaussian(), LinearVariancePreserving())
    result = straightness(oracle, 300, seed=0, steps=20, dtype=torch.float64)
    assert result.straightness == pytest.approx(0.0, abs=1e-12)
    assert float(result.per_sample_straightness.max()) < 1e-12
    assert result.path_energy_ratio == pytest.approx(1.0, abs=1e-12)
    assert result.mean_squared_displacement == pytest.approx(0.999**2 * float(MEAN @ MEAN))
    # The translation is the OT map between N(0, I) and N(m, I), run at constant speed, so
    # it spends the least energy any flow can (Benamou-Brenier): Tong et al.'s NPE is 0.
    # (Between a point set and its translate the identity matching is optimal, so the
    # empirical W2^2 is |0.999 m|^2 exactly, as is PE.)
    assert result.w2_squared_ends == pytest.approx(0.999**2 * float(MEAN @ MEAN), rel=1e-9)
    assert result.normalized_path_energy == pytest.approx(0.0, abs=1e-9)


def test_rectified_flow_oracle_on_a_unit_gaussian_matches_the_closed_form():
    # x_t = t m + std_t z with std_t^2 = t^2 + (1 - t)^2 (see test_solver_convergence):
    # v - d = std_t' z, and int_0^1 std_t'^2 dt = int_{-1}^{1} u^2 / (1 + u^2) du = 2 - pi / 2.
    # So the independent-coupling flow of rectified flow is NOT straight even here:
    # S_i = (2 - pi / 2) |z_i|^2, and the energy ratio is 1 + (2 - pi / 2) E|z|^2 / |m|^2.
    oracle = GaussianMixtureOracle(unit_gaussian(), RectifiedFlowSchedule())
    n = 200
    result = straightness(oracle, n, seed=0, steps=200, dtype=torch.float64)
    z = NoiseSource(0, n).initial((2,), 1.0, torch.float64)
    expected = (2 - math.pi / 2) * z.pow(2).sum(1)
    torch.testing.assert_close(result.per_sample_straightness, expected, rtol=1e-4, atol=1e-6)
    assert result.mean_squared_displacement == pytest.approx(float(MEAN @ MEAN), rel=1e-6)
    # The ends are the starts translated by m (the marginal flow of N(0, I) -> N(m, I)
    # under independent coupling is z -> z + m at t = 1), so W2^2 = |m|^2 and
    # NPE = (PE - |m|^2) / |m|^2 = (2 - pi / 2) E|z|^2 / |m|^2: analytic and far from 0.
    assert result.w2_squared_ends == pytest.approx(float(MEAN @ MEAN), rel=1e-6)
    assert result.normalized_path_energy == pytest.approx(
        float(expected.mean()) / float(MEAN @ MEAN), rel=1e-4
    )
    assert result.normalized_path_energy > 0.1
    assert result.path_energy_ratio == pytest.approx(
        1 + float(expected.mean()) / float(MEAN @ MEAN), rel=1e-4
    )


def test_settings_counts_and_batch_invariance():
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, VPSchedule())
    whole = straightness(oracle, 40, seed=3, solver="heun", steps=16, grid="logsnr",
                         dtype=torch.float64)
    parts = straightness(oracle, 40, seed=3, solver="heun", steps=16, grid="logsnr",
                         batch_size=15, dtype=torch.float64)
    torch.testing.assert_close(parts.per_sample_straightness, whole.per_sample_straightness)
    assert whole.nfe_solver == 32 and whole.nfe_metric == 17
    assert parts.nfe_solver == 3 * 32 and parts.nfe_metric == 3 * 17
    summary = whole.summary()
    assert summary["straightness_solver"] == "heun" and summary["straightness_grid"] == "logsnr"
    assert summary["straightness_steps"] == 16 and summary["t_end"] == VPSchedule().t_end
    json.dumps(summary)
    # S = E|d|^2 (energy ratio - 1), the identity of the module doc, up to the quadrature
    # error of int v dt = d on 16 Heun steps (2 % here)
    assert whole.straightness == pytest.approx(
        (whole.path_energy_ratio - 1) * whole.mean_squared_displacement, rel=0.05
    )


def test_trapezoid_weights():
    grid = torch.tensor([0.0, 0.1, 0.4, 1.0], dtype=torch.float64)
    w = trapezoid_weights(grid)
    torch.testing.assert_close(w, torch.tensor([0.05, 0.2, 0.45, 0.3], dtype=torch.float64))
    assert float((w * grid**1).sum()) == pytest.approx(0.5)  # exact for linear functions


@pytest.mark.parametrize("solver", ["euler_maruyama", "pc", "dopri5"])
def test_rejects_stochastic_and_adaptive_solvers(solver):
    oracle = GaussianMixtureOracle(unit_gaussian(), RectifiedFlowSchedule())
    with pytest.raises(ValueError, match="deterministic fixed-grid"):
        straightness(oracle, 4, seed=0, solver=solver)


def test_ot_cfm_is_straighter_than_independent_cfm():
    # Same network, data, budget and seed; only the coupling differs. Measured on
    # 8gaussians after 500 steps: S = 1.8 (cfm) against 0.016 (ot_cfm); energy 1.66 vs 1.01.
    data = get_dataset("8gaussians").sample(5000, seed=0)
    net = {"kind": "mlp", "dim": 2, "width": 64, "depth": 2, "activation": "silu",
           "time_embed_dim": 16}
    results = {}
    for method in ("cfm", "ot_cfm"):
        cfg = TrainConfig(method=method, steps=500, batch_size=256, lr=3e-3, warmup_steps=50,
                          network=net)
        model = train(cfg, data, progress=False).model
        results[method] = straightness(model, 500, seed=0, steps=50)
    cfm, ot = results["cfm"], results["ot_cfm"]
    assert ot.straightness < 0.1 * cfm.straightness, (ot.straightness, cfm.straightness)
    assert ot.path_energy_ratio < cfm.path_energy_ratio
    assert 1.0 <= ot.path_energy_ratio < 1.1
    # Tong et al.'s excess over the OT cost: near 0 for OT-CFM, far from it for I-CFM.
    assert ot.normalized_path_energy < 0.5 * cfm.normalized_path_energy


def test_path_energy_of_a_wide_gaussian_matches_the_closed_form():
    # Data N(m, s^2 I), rectified-flow path: x_t = t m + std_t z with
    # std_t = sqrt((1 - t)^2 + t^2 s^2), so v = m + std_t' z and per sample
    #   int |v|^2 dt = |m|^2 + 2 (m . z)(s - 1) + |z|^2 I,  I = int_0^1 std_t'^2 dt,
    #   |d|^2 = |m + (s - 1) z|^2.
    # I is computed here by scipy's adaptive quadrature, independently of the code.
    from scipy.integrate import quad

    s = 3.0
    mixture = GaussianMixture(np.ones(1), MEAN[None], (s**2 * np.eye(2))[None])
    oracle = GaussianMixtureOracle(mixture, RectifiedFlowSchedule())
    n = 200
    result = straightness(oracle, n, seed=1, steps=200, dtype=torch.float64)
    integral = quad(lambda t: (t * (1 + s**2) - 1) ** 2 / ((1 - t) ** 2 + t**2 * s**2), 0, 1)[0]
    z = NoiseSource(1, n).initial((2,), 1.0, torch.float64).numpy()
    m = MEAN
    energy = m @ m + 2 * (z @ m) * (s - 1) + (z**2).sum(1) * integral
    displacement = ((m + (s - 1) * z) ** 2).sum(1)
    assert result.path_energy == pytest.approx(energy.mean(), rel=1e-4)
    assert result.mean_squared_displacement == pytest.approx(displacement.mean(), rel=1e-6)
    assert result.path_energy_ratio == pytest.approx(
        energy.mean() / displacement.mean(), rel=1e-4
    )
    assert result.path_energy_ratio > 1.05  # not straight: the check has teeth


def test_normalized_path_energy_is_the_relative_excess_over_w2_squared():
    assert normalized_path_energy(1.222, 1.0) == pytest.approx(0.222)
    assert normalized_path_energy(0.9, 1.0) == pytest.approx(0.1)  # |.|: below W2^2 too
    with pytest.raises(ValueError, match="W2\\^2 > 0"):
        normalized_path_energy(1.0, 0.0)
