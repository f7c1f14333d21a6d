"""The per-sample noise source: starting noise and per-sample Brownian paths."""

import math
import time

import numpy as np
import pytest
import torch

from sfbench.solvers import NoiseSource
from sfbench.solvers.brownian import KeyedNormals, hash_words, mix64, rows_per_block


def like(n, *shape, dtype=torch.float64):
    return torch.zeros(n, *shape, dtype=dtype)


def test_initial_noise_depends_only_on_seed_and_index():
    full = NoiseSource(seed=5, n_samples=10).initial((3,), std=2.0, dtype=torch.float64)
    assert full.shape == (10, 3) and full.dtype == torch.float64
    # a batch of the run, and a run with more samples, reproduce the same rows
    part = NoiseSource(seed=5, n_samples=10).batch(4, 7).initial((3,), 2.0, torch.float64)
    torch.testing.assert_close(part, full[4:7], rtol=0, atol=0)
    longer = NoiseSource(seed=5, n_samples=25).initial((3,), 2.0, torch.float64)
    torch.testing.assert_close(longer[:10], full, rtol=0, atol=0)
    # std scales, dtype only rounds
    unit = NoiseSource(seed=5, n_samples=10).initial((3,), 1.0, torch.float32)
    torch.testing.assert_close(unit, (full / 2).float())
    other = NoiseSource(seed=6, n_samples=10).initial((3,), 2.0, torch.float64)
    assert not torch.allclose(other, full)


def test_initial_noise_is_standard_normal():
    z = NoiseSource(seed=0, n_samples=5000).initial((2,), dtype=torch.float64)
    assert z.mean(0).abs().max() < 0.06
    torch.testing.assert_close(torch.cov(z.T), torch.eye(2, dtype=torch.float64), atol=0.06, rtol=0)


def test_initial_noise_is_fast_for_10k_samples():
    tic = time.perf_counter()
    NoiseSource(seed=0, n_samples=10_000).initial((2,))
    assert time.perf_counter() - tic < 10.0  # about 0.1 s; guards against a per-sample blow-up


@pytest.mark.parametrize(("t", "s"), [(0.0, 1.0), (0.25, 0.5), (0.1, 0.35), (0.999, 1.0),
                                      (0.3, 0.3 + 1e-5)])
def test_increment_is_normal_with_variance_dt(t, s):
    n = 20_000
    dw = NoiseSource(seed=1, n_samples=n).step(t, s, like(n, 2)).numpy() / math.sqrt(s - t)
    # standardised: mean 0 (se 0.007), variance 1 (se 0.01), uncorrelated coordinates
    assert np.all(np.abs(dw.mean(0)) < 0.03), dw.mean(0)
    assert np.all(np.abs(dw.var(0) - 1) < 0.04), dw.var(0)
    assert abs(np.corrcoef(dw.T)[0, 1]) < 0.03
    # fourth moment of a normal is 3 (se ~0.035): the draws are Gaussian, not just scaled
    assert np.all(np.abs((dw**4).mean(0) - 3) < 0.25)


def test_coarse_increment_is_the_sum_of_the_fine_ones():
    # Refining the grid refines the same path: a coarse step's increment is the sum of
    # the increments of the fine steps inside it, for any grid and in any query order.
    n = 50
    coarse = NoiseSource(seed=3, n_samples=n).step(0.1, 0.7, like(n, 3))
    for fine_grid in (np.linspace(0.1, 0.7, 7), np.linspace(0.1, 0.7, 1001),
                      np.sort(np.r_[0.1, 0.7, np.random.default_rng(0).uniform(0.1, 0.7, 30)])):
        source = NoiseSource(seed=3, n_samples=n)  # fresh: no state shared with `coarse`
        total = sum(source.step(a, b, like(n, 3)) for a, b in zip(fine_grid[:-1], fine_grid[1:],
                                                                 strict=True))
        torch.testing.assert_close(total, coarse, rtol=0, atol=1e-12)
    # queried backwards, the same values come out
    source = NoiseSource(seed=3, n_samples=n)
    source.step(0.6, 0.9, like(n, 3))
    torch.testing.assert_close(source.step(0.1, 0.7, like(n, 3)), coarse, rtol=0, atol=0)


def test_increments_over_disjoint_intervals_and_streams_are_independent():
    n = 20_000
    source = NoiseSource(seed=2, n_samples=n)
    a = source.step(0.2, 0.3, like(n, 1)).numpy().ravel()
    b = source.step(0.3, 0.45, like(n, 1)).numpy().ravel()
    c = source.step(0.2, 0.3, like(n, 1), stream=1).numpy().ravel()
    d = NoiseSource(seed=3, n_samples=n).step(0.2, 0.3, like(n, 1)).numpy().ravel()
    for other in (b, c, d):
        assert abs(np.corrcoef(a, other)[0, 1]) < 0.03
    # across samples: neighbouring samples are uncorrelated
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.03


def test_brownian_covariance_of_overlapping_intervals():
    # Cov(W(s) - W(0), W(u) - W(0)) = min(s, u): a Brownian motion, not independent steps.
    n = 20_000
    source = NoiseSource(seed=4, n_samples=n)
    w_s = source.step(0.0, 0.3, like(n, 1)).numpy().ravel()
    w_u = source.step(0.0, 0.8, like(n, 1)).numpy().ravel()
    assert np.cov(w_s, w_u)[0, 1] == pytest.approx(0.3, abs=0.02)


def test_increments_do_not_depend_on_the_batch():
    full = NoiseSource(seed=7, n_samples=1500)
    whole = full.step(0.05, 0.3, like(1500, 4), stream=2)
    for start, stop in ((0, 1), (13, 600), (1000, 1500)):
        part = full.batch(start, stop).step(0.05, 0.3, like(stop - start, 4), stream=2)
        torch.testing.assert_close(part, whole[start:stop], rtol=0, atol=0)
    # and a longer run extends rather than reshuffles
    longer = NoiseSource(seed=7, n_samples=2000).step(0.05, 0.3, like(2000, 4), stream=2)
    torch.testing.assert_close(longer[:1500], whole, rtol=0, atol=0)


def test_step_noise_follows_like():
    source = NoiseSource(seed=1, n_samples=6)
    z = source.step(0.0, 0.5, like(6, 2, 3, dtype=torch.float32))
    assert z.shape == (6, 2, 3) and z.dtype == torch.float32
    zn = source.step_normal(0.0, 0.5, like(6, 2, 3))
    torch.testing.assert_close(zn.float() * math.sqrt(0.5), z)
    # step noise is not the starting noise
    start = source.initial((2,), dtype=torch.float64)
    assert not torch.allclose(start, source.step(0, 1, like(6, 2)))


@pytest.mark.parametrize(("args", "match"), [
    ((-0.1, 0.5), r"0 <= t <= s <= 1"),
    ((0.5, 1.5), r"0 <= t <= s <= 1"),
    ((0.6, 0.5), r"0 <= t <= s <= 1"),
])
def test_step_rejects_intervals_outside_the_path(args, match):
    with pytest.raises(ValueError, match=match):
        NoiseSource(0, 4).step(*args, like(4, 2))


def test_step_rejects_wrong_batch_and_zero_length_normal():
    with pytest.raises(ValueError, match="covers 4 samples"):
        NoiseSource(0, 4).step(0.0, 0.5, like(5, 2))
    with pytest.raises(ValueError, match="s > t"):
        NoiseSource(0, 4).step_normal(0.5, 0.5, like(4, 2))
    with pytest.raises(ValueError, match="stream"):
        NoiseSource(0, 4).step(0.0, 0.5, like(4, 2), stream=-1)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"seed": -1, "n_samples": 3}, "seed"),
    ({"seed": 0, "n_samples": 0}, "n_samples"),
    ({"seed": 1.5, "n_samples": 3}, "seed"),
    ({"seed": 0, "n_samples": 3, "depth": 0}, "depth"),
    ({"seed": 0, "n_samples": 3, "depth": 60}, "depth"),
])
def test_noise_source_validates(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NoiseSource(**kwargs)


def test_batch_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        NoiseSource(0, 4).batch(2, 6)


def test_describe_names_the_construction():
    info = NoiseSource(3, 4).describe()
    assert info["seed"] == 3 and info["brownian_depth"] == 24 and "Brownian" in info["step"]


def test_keyed_normals_rows_depend_only_on_their_index():
    size = 3
    normals = KeyedNormals(hash_words(1, 2), size)
    rows = rows_per_block(size)
    whole = normals(5, 0, 3 * rows + 7)
    torch.testing.assert_close(torch.from_numpy(normals(5, rows - 2, 9)),
                               torch.from_numpy(whole[rows - 2 : rows + 7]), rtol=0, atol=0)
    assert not np.allclose(normals(6, 0, 4), whole[:4])  # another node, other normals


def test_hash_words_separates_tuples():
    keys = {hash_words(a, b) for a in range(50) for b in range(50)}
    assert len(keys) == 2500
    assert hash_words(1, 2) != hash_words(2, 1)
    assert hash_words(2**64 + 5) != hash_words(5)  # big seeds are folded, not truncated
    assert mix64(0) == 0 and mix64(1) != 1  # the finaliser fixes 0, like splitmix64's
