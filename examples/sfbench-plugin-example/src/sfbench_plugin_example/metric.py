"""Sliced Wasserstein-2 distance between two point sets (Rabin et al. 2011).

SW2(X, Y)^2 is the mean over unit directions theta of W2^2 between the 1-D
projections theta.X and theta.Y, each an exact 1-D optimal transport (the
quantile functions matched). It costs O(L n log n) for L directions instead
of exact W2's O(n^3), so it suits large sample sets. The directions are fixed
(uniform on the sphere, from SEED), so every sample set of a sweep is
measured along the same ones. Lower is better.
"""

import numpy as np

from sfbench.eval.metrics import VECTOR, Metric

N_PROJECTIONS, SEED = 256, 0


def projections(dim: int, n: int = N_PROJECTIONS, seed: int = SEED) -> np.ndarray:
    """``[dim, n]`` unit directions, uniform on the sphere."""
    theta = np.random.default_rng(seed).standard_normal((dim, n))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def sliced_w2(x: np.ndarray, y: np.ndarray, theta: np.ndarray | None = None) -> float:
    """SW2 between the empirical measures of ``x`` [N, D] and ``y`` [M, D] (N, M may differ)."""
    theta = projections(np.shape(x)[1]) if theta is None else theta
    return _from_sorted(_sorted_projections(x, theta), _sorted_projections(y, theta))


def _sorted_projections(points, theta) -> np.ndarray:
    return np.sort(np.asarray(points, np.float64) @ theta, axis=0)


def _from_sorted(xs: np.ndarray, ys: np.ndarray) -> float:
    # 1-D W2^2 = integral over s in (0, 1] of (F_x^-1(s) - F_y^-1(s))^2: both quantile
    # functions are constant between consecutive levels of the union of their steps
    qx, qy = np.arange(1, len(xs) + 1) / len(xs), np.arange(1, len(ys) + 1) / len(ys)
    levels = np.union1d(qx, qy)
    widths = np.diff(levels, prepend=0.0)
    ix = np.minimum(np.searchsorted(qx, levels), len(xs) - 1)
    iy = np.minimum(np.searchsorted(qy, levels), len(ys) - 1)
    per_direction = (widths[:, None] * (xs[ix] - ys[iy]) ** 2).sum(axis=0)
    return float(np.sqrt(per_direction.mean()))


def _build(test):
    """The evaluator against a test set (a sweep scores many sample sets against one test
    set, so its projections are sorted once)."""
    theta = projections(np.shape(test)[1])
    sorted_test = _sorted_projections(test, theta)
    return lambda samples: {"sw2": _from_sorted(_sorted_projections(samples, theta), sorted_test)}


SW2 = Metric("sw2", "SW2", "sliced W$_2$", frozenset({VECTOR}), _build, log_axis=True)
