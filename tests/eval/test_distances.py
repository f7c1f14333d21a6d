"""Sample-set distances against closed forms and an independent Frechet computation."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from sfbench.eval.distances import (
    MMD_BANDWIDTHS,
    MMDAgainst,
    frechet_distance_coords,
    mmd,
    wasserstein2,
)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- W2


def test_w2_of_shifted_copy_is_the_shift_norm():
    # For equal uniform weights every coupling has sum_ij pi_ij (x_i - x_j) = 0, so
    # W2^2(X, X + s) = |s|^2 + min_pi sum pi |x_i - x_j|^2 = |s|^2 (identity coupling).
    x = _rng().standard_normal((500, 2)) * [1.0, 2.0]
    shift = np.array([0.3, -0.4])
    assert wasserstein2(x, x + shift) == pytest.approx(0.5, rel=1e-9)
    # sqrt of a cost that is zero up to rounding (~1e-16): W2 itself is only ~1e-8 accurate at 0.
    assert wasserstein2(x, x) == pytest.approx(0.0, abs=1e-7)


def test_w2_ignores_order_and_is_symmetric():
    rng = _rng(1)
    x, y = rng.standard_normal((300, 2)), rng.standard_normal((200, 2)) + 1.0
    w = wasserstein2(x, y)
    assert wasserstein2(y, x) == pytest.approx(w, rel=1e-9)
    assert wasserstein2(x[rng.permutation(300)], y) == pytest.approx(w, rel=1e-9)


def test_w2_of_two_point_sets_by_hand():
    # {0, 2} vs {1, 5} on a line: the monotone coupling 0->1, 2->5 costs (1 + 9) / 2.
    x, y = np.array([[0.0], [2.0]]), np.array([[5.0], [1.0]])
    assert wasserstein2(x, y) == pytest.approx(math.sqrt(5.0), rel=1e-12)


def test_w2_matches_gaussian_closed_form_for_large_samples():
    # W2^2(N(m1, S1), N(m2, S2)) = |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^1/2 S1 S2^1/2)^1/2).
    # The empirical W2 of n = 2000 points overestimates by O(sqrt(log n / n)) in 2-D,
    # so the tolerance is 5 % of a distance of ~3.
    rng = _rng(2)
    m1, m2 = np.zeros(2), np.array([3.0, 1.0])
    s1, s2 = np.array([[1.0, 0.3], [0.3, 0.5]]), np.array([[0.4, 0.0], [0.0, 1.5]])
    x = rng.multivariate_normal(m1, s1, 2000)
    y = rng.multivariate_normal(m2, s2, 2000)
    r2 = scipy.linalg.sqrtm(s2).real
    exact = math.sqrt(
        np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(r2 @ s1 @ r2).real)
    )
    assert wasserstein2(x, y) == pytest.approx(exact, rel=0.05)


# ---------------------------------------------------------------- MMD


def test_mmd_near_zero_for_same_law_and_positive_for_different():
    rng = _rng(3)
    x, y = rng.standard_normal((1000, 2)), rng.standard_normal((1000, 2))
    z = rng.standard_normal((1000, 2)) * 1.3 + [0.5, 0.0]
    same, diff = mmd(x, y), mmd(x, z)
    # Over seeds, same ~ +-0.003 and diff ~ 0.08-0.13 at n = 1000.
    assert abs(same) < 0.01
    assert diff > 0.05
    assert diff > 10 * abs(same)


def test_mmd_is_symmetric_and_accepts_torch():
    rng = _rng(4)
    x, y = rng.standard_normal((200, 2)), rng.standard_normal((150, 2)) + 1.0
    assert mmd(x, y) == pytest.approx(mmd(y, x), rel=1e-12)
    assert mmd(torch.from_numpy(x).float(), y) == pytest.approx(mmd(x, y), rel=1e-5)


def test_mmd_matches_a_direct_unbiased_formula():
    rng = _rng(5)
    x, y = rng.standard_normal((40, 2)), rng.standard_normal((30, 2)) * 2.0
    bw = (0.5, 3.0)

    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * h**2)) for h in bw)

    kxx, kyy = k(x, x), k(y, y)
    n, m = len(x), len(y)
    ref = (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )
    assert mmd(x, y, bandwidths=bw, chunk_size=7) == pytest.approx(ref, rel=1e-10)


def test_mmd_with_underflowing_kernels_matches_numpy():
    # Spread points and the narrowest default bandwidth: most exponents of the
    # h = 0.1 kernel lie far below -700, where the computation clamps them.
    from sfbench.eval.distances import MMD_BANDWIDTHS

    rng = _rng(6)
    x, y = rng.uniform(-4, 4, (300, 2)), rng.uniform(-4, 4, (200, 2)) * 1.1

    def k(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * h**2)) for h in MMD_BANDWIDTHS)

    kxx, kyy = k(x, x), k(y, y)
    n, m = len(x), len(y)
    ref = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
           + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())
    assert mmd(x, y) == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_mmd_against_a_fixed_reference_matches_mmd_for_every_sample_set():
    # The sweep scores many sample sets against one test set with the y-y term
    # computed once; each score must equal the one-shot mmd of that pair.
    rng = _rng(6)
    y = rng.standard_normal((50, 2))
    against = MMDAgainst(y, bandwidths=(0.3, 2.0), chunk_size=9)
    for shift in (0.0, 0.5, 3.0):
        x = rng.standard_normal((35, 2)) + shift
        assert against(x) == pytest.approx(mmd(x, y, bandwidths=(0.3, 2.0)), rel=1e-12)
    with pytest.raises(ValueError, match="same dimension"):
        against(rng.standard_normal((35, 3)))


def test_mmd_default_bandwidths_span_mode_width_to_data_scale():
    assert min(MMD_BANDWIDTHS) <= 0.15 and max(MMD_BANDWIDTHS) >= 4.0


# ---------------------------------------------------------------- Frechet


def _scipy_frechet(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    c1, c2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


@pytest.mark.parametrize("dim", [2, 5])
def test_frechet_matches_numpy_scipy(dim):
    rng = _rng(6 + dim)
    a = rng.standard_normal((dim, dim))
    x = rng.standard_normal((800, dim)) @ a + 0.5
    y = rng.standard_normal((600, dim)) * 0.7 - 0.2
    ref = _scipy_frechet(x, y)
    assert ref > 0.1
    assert frechet_distance_coords(x, y) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance_coords(y, x) == pytest.approx(ref, rel=1e-6)


def test_frechet_of_shifted_copy_is_squared_shift():
    x = _rng(9).standard_normal((400, 2)) * [2.0, 0.5]
    assert frechet_distance_coords(x, x + [3.0, 4.0]) == pytest.approx(25.0, rel=1e-6)


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize("fn", [wasserstein2, mmd, frechet_distance_coords])
def test_errors_name_shapes_and_count_bad_values(fn):
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"\(10, 2\) and \(10, 3\)"):
        fn(x, np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        fn(np.zeros(10), x)
    bad = np.ones((10, 2))
    bad[0, 0], bad[3, 1], bad[4, 0] = np.nan, np.nan, np.inf
    with pytest.raises(ValueError, match="2 NaN and 1 Inf"):
        fn(x, bad)
    with pytest.raises(ValueError, match="at least"):
        fn(np.zeros((0, 2)), x)


def test_mmd_rejects_bad_bandwidths():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, x, bandwidths=(1.0, -1.0))
