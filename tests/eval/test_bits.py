"""Bits/dim: dequantization and conversion checked on a discretized Gaussian in 64 dimensions.

The data: every pixel independently v ~ P, the N(mu, s^2) mass of the cell of width
h = 2 / (L - 1) around each level 2 v / (L - 1) - 1 (outer cells to +-inf). Its entropy,
H = -sum_v P(v) log2 P(v) bits per dimension, is the closed form the tests compare with.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from sfbench.data.gmm import GaussianMixture
from sfbench.eval.bits import (
    bits_offset,
    bits_per_dim,
    dequantize,
    discrete_values,
    level_spacing,
    nll_bits_per_dim,
)
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import RectifiedFlowSchedule

D = 64


def discretized_gaussian(levels: int, mu: float, s: float) -> np.ndarray:
    grid = 2.0 * np.arange(levels) / (levels - 1) - 1.0
    h = level_spacing(levels)
    edges = np.concatenate([[-np.inf], grid[:-1] + h / 2, [np.inf]])
    return np.diff(norm.cdf((edges - mu) / s))


def draw(levels, p, n, seed=0):
    return np.random.default_rng(seed).choice(levels, size=(n, D), p=p)


def test_offsets_are_log2_of_half_the_gaps():
    assert bits_offset(17) == pytest.approx(3.0, abs=1e-15)  # digits: h = 1/8
    assert bits_offset(256) == pytest.approx(math.log2(127.5), abs=1e-15)
    assert bits_per_dim(0.0, 10, 17) == pytest.approx(3.0)
    assert bits_per_dim(10 * math.log(2.0), 10, 17) == pytest.approx(4.0)  # 1 bit/dim more


@pytest.mark.parametrize("levels", [17, 256])
def test_dequantized_point_stays_in_its_own_cell(levels):
    v = np.random.default_rng(0).integers(0, levels, size=(200, D))
    x = dequantize(v, levels, seed=1)
    centre = 2.0 * v / (levels - 1) - 1.0
    h = level_spacing(levels)
    assert (np.abs(x - centre) <= h / 2).all()
    # Uniform over the cell: mean offset 0, variance h^2 / 12.
    off = (x - centre) / h
    assert abs(off.mean()) < 0.01 and off.var() == pytest.approx(1 / 12, rel=0.02)
    np.testing.assert_array_equal(dequantize(v, levels, seed=1), x)


@pytest.mark.parametrize("levels, mu, s", [(256, 0.1, 0.3), (17, -0.2, 0.25)])
def test_histogram_density_gives_exactly_the_discrete_bits(levels, mu, s):
    # The piecewise-constant density p(x) = prod_d P(v_d(x)) / h is the discrete model spread
    # uniformly over its cells. For it the dequantized bound is tight: bpd of any dequantized
    # point must equal -log2 P(v) / D exactly, whatever u is. A wrong offset, a cell not centred
    # on the level or a point leaving its cell all break this equality.
    p = discretized_gaussian(levels, mu, s)
    v = draw(levels, p, 2000)
    x = dequantize(v, levels, seed=3)
    h = level_spacing(levels)
    cell = np.clip(np.floor((x + 1.0 + h / 2) / h), 0, levels - 1).astype(int)
    nll_nats = -(np.log(p[cell]) - math.log(h)).sum(1)
    bpd = bits_per_dim(nll_nats, D, levels)
    exact = -np.log2(p[v]).sum(1) / D
    np.testing.assert_allclose(bpd, exact, rtol=0, atol=1e-10)
    # ... and its mean is the closed-form entropy, up to sampling error.
    entropy = -(p * np.log2(p)).sum()
    assert bpd.mean() == pytest.approx(entropy, abs=4 * bpd.std() / math.sqrt(len(bpd)))


def test_gaussian_density_bound_in_closed_form_and_above_the_entropy():
    # For the continuous density N(mu, s^2) per pixel, E_u[-log p(x)] of the cell around c is
    # log(2 pi s^2) / 2 + ((c - mu)^2 + h^2 / 12) / (2 s^2): the expected bpd is a finite sum.
    levels, mu, s = 17, 0.1, 0.2
    p = discretized_gaussian(levels, mu, s)
    h, grid = level_spacing(levels), 2.0 * np.arange(levels) / (levels - 1) - 1.0
    per_level = 0.5 * math.log(2 * math.pi * s**2) + ((grid - mu) ** 2 + h**2 / 12) / (2 * s**2)
    expected = bits_per_dim(D * (p * per_level).sum(), D, levels)
    entropy = -(p * np.log2(p)).sum()
    assert expected > entropy  # Jensen: the dequantized bound lies above the entropy

    v = draw(levels, p, 4000, seed=5)
    x = dequantize(v, levels, seed=6)
    nll = -norm.logpdf(x, mu, s).sum(1)
    bpd = bits_per_dim(nll, D, levels)
    assert bpd.mean() == pytest.approx(expected, abs=4 * bpd.std() / math.sqrt(len(bpd)))


def test_nll_bits_per_dim_through_the_ode_matches_the_exact_density():
    # The probability-flow ODE of the rectified-flow oracle for N(mu, s^2 I) in 64 dimensions
    # with the exact divergence: bpd of the dequantized points equals the closed-form density's.
    levels, mu, s = 17, 0.1, 0.3
    p = discretized_gaussian(levels, mu, s)
    v = draw(levels, p, 12, seed=7)
    x = 2.0 * v / (levels - 1) - 1.0
    mixture = GaussianMixture(np.ones(1), np.full((1, D), mu), s**2 * np.eye(D)[None])
    oracle = GaussianMixtureOracle(mixture, RectifiedFlowSchedule())
    res = nll_bits_per_dim(oracle, x, levels, seed=11, dtype=torch.float64, rtol=1e-7, atol=1e-7)
    xd = dequantize(v, levels, seed=11)
    exact = bits_per_dim(-norm.logpdf(xd, mu, s).sum(1), D, levels)
    np.testing.assert_allclose(res["bits"].numpy(), exact, rtol=0, atol=1e-5)
    assert res["divergence"] == "exact" and res["dim"] == D and res["levels"] == levels
    assert res["bits_offset_per_dim"] == 3.0 and res["dequantization_seed"] == 11
    assert res["t_end"] == 1.0 and res["rtol"] == 1e-7


def test_off_grid_data_is_refused():
    with pytest.raises(ValueError, match="not on the 17-level grid"):
        discrete_values(np.array([[0.0, 0.03]]), 17)
    assert discrete_values(np.array([[-1.0, 0.125, 1.0]]), 17).tolist() == [[0, 9, 16]]
