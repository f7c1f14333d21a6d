r"""Distances between two sets of points (generated samples vs. reference data).

Three distances, each on the raw coordinates:

- :func:`wasserstein2`: exact 2-Wasserstein distance between the two empirical
  measures (uniform weights), by network simplex (POT's ``ot.emd2``).
- :func:`mmd`: unbiased estimate of the squared maximum mean discrepancy with a
  sum of Gaussian (RBF) kernels at fixed bandwidths.
- :func:`frechet_distance_coords`: the FID formula on the coordinates
  themselves (the Frechet distance of the two fitted Gaussians), computed by
  torchmetrics so that 2-D and image results share one FID implementation.

Inputs are ``[n, d]`` arrays or tensors (numpy or torch, any float dtype); all
arithmetic is float64. Malformed inputs raise :class:`ValueError` naming the
shapes or counting the bad values, since a NaN sample set from a diverged model
would otherwise surface as a silently wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

#: Default RBF bandwidths h of :func:`mmd`, k(x, y) = sum_h exp(-|x - y|^2 / (2 h^2)).
#: The 2-D datasets have overall scale ~2 and mode widths ~0.15-0.5, so the
#: scales span a mode's width (0.1) to the whole data set (5): a small h sees
#: misplaced or blurred modes, a large h sees wrong mode weights.
MMD_BANDWIDTHS: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

# Above this many iterations POT's network simplex would stop early; enough for
# ~10^4 points per set (the iteration count grows roughly linearly with n^2 here).
_EMD_MAX_ITER = 100_000_000


def _as_points(name: str, x, min_points: int = 1) -> Tensor:
    """x as a float64 ``[n, d]`` tensor, or a ValueError that says what is wrong."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D [n, d] array of points, got shape {tuple(t.shape)}")
    if t.shape[0] < min_points:
        raise ValueError(
            f"{name} must hold at least {min_points} point(s), got shape {tuple(t.shape)}"
        )
    if t.shape[1] < 1:
        raise ValueError(f"{name} has points of dimension 0 (shape {tuple(t.shape)})")
    t = t.detach().to(device="cpu", dtype=torch.float64)
    n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    if n_nan or n_inf:
        raise ValueError(
            f"{name} (shape {tuple(t.shape)}) contains {n_nan} NaN and {n_inf} Inf values"
        )
    return t


def _pair(x, y, min_points: int = 1) -> tuple[Tensor, Tensor]:
    x, y = _as_points("x", x, min_points), _as_points("y", y, min_points)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have points of the same dimension, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x, y


def wasserstein2(x, y) -> float:
    r"""Exact W2 between the empirical measures of x ``[n, d]`` and y ``[m, d]``.

    .. math:: W_2 = \Big(\min_{\pi \in \Pi(1/n, 1/m)} \sum_{ij} \pi_{ij} |x_i - y_j|^2\Big)^{1/2}

    solved exactly as a linear program (``ot.emd2``, network simplex) in
    float64. Cost O(n m) memory and roughly O(n^2 m) time: about a second for
    2000 x 2000 points.

    Raises:
        ValueError: on malformed input (see module docstring).
        RuntimeError: if the solver stops before optimality.
    """
    import ot  # here, not at module level: importing POT costs ~1 s per process

    x, y = _pair(x, y)
    xn, yn = x.numpy(), y.numpy()
    a = np.full(len(xn), 1.0 / len(xn))
    b = np.full(len(yn), 1.0 / len(yn))
    cost = ot.dist(xn, yn, metric="sqeuclidean")
    value, log = ot.emd2(a, b, cost, numItermax=_EMD_MAX_ITER, log=True)
    if log.get("warning"):
        # An early stop gives an upper bound, not the distance: refuse it.
        raise RuntimeError(f"exact OT did not converge ({log['warning']}); W2 is not exact")
    return float(np.sqrt(max(float(value), 0.0)))


def _rbf_sum(a: Tensor, b: Tensor, bandwidths: Sequence[float], chunk: int) -> Tensor:
    """sum_{i, j} sum_h exp(-|a_i - b_j|^2 / (2 h^2)), in row blocks of a to bound memory."""
    total = torch.zeros((), dtype=torch.float64)
    kernel = None
    for start in range(0, a.shape[0], chunk):
        # Direct differences, not |a|^2 + |b|^2 - 2ab, so that d2 of identical points is exactly 0.
        d2 = torch.cdist(a[start : start + chunk], b, compute_mode="donot_use_mm_for_euclid_dist")
        d2.square_()
        if kernel is None or kernel.shape != d2.shape:
            kernel = torch.empty_like(d2)
        for h in bandwidths:
            # Exponents below -700 are clamped there: exp of a value that under- or
            # nearly underflows takes a slow path (15x slower for the narrowest
            # bandwidth of 2-D data), and a term e^-700 ~ 1e-304 cannot move a kernel sum.
            torch.mul(d2, -0.5 / h**2, out=kernel).clamp_min_(-700.0)
            total += kernel.exp_().sum()
    return total


def mmd(x, y, bandwidths: Sequence[float] = MMD_BANDWIDTHS, chunk_size: int = 512) -> float:
    r"""Unbiased squared MMD between x ``[n, d]`` and y ``[m, d]`` (n, m >= 2).

    .. math::
        \mathrm{MMD}^2_u = \frac{1}{n(n-1)} \sum_{i \ne j} k(x_i, x_j)
        + \frac{1}{m(m-1)} \sum_{i \ne j} k(y_i, y_j)
        - \frac{2}{nm} \sum_{i, j} k(x_i, y_j),
        \qquad k(x, y) = \sum_h \exp\Big(-\frac{|x - y|^2}{2 h^2}\Big)

    (Gretton et al. 2012, Lemma 6), with the fixed bandwidths ``bandwidths``
    (default :data:`MMD_BANDWIDTHS`), so numbers are comparable across runs.
    Being unbiased, it can be slightly negative when x and y share a law.
    Computed in float64, ``chunk_size`` rows of the kernel matrix at a time.
    To compare many sample sets with one reference, use :class:`MMDAgainst`.
    """
    x, _ = _pair(x, y, min_points=2)  # x's errors are reported before y's
    return MMDAgainst(y, bandwidths, chunk_size)(x)


class MMDAgainst:
    """:func:`mmd` against a fixed reference set y, whose y-y term is computed once.

    A sweep scores ~40 sample sets against one test set; the y-y kernel sum is
    a third of each MMD's cost and the same every time.
    """

    def __init__(self, y, bandwidths: Sequence[float] = MMD_BANDWIDTHS, chunk_size: int = 512):
        if len(bandwidths) == 0 or any(not h > 0 for h in bandwidths):
            raise ValueError(
                f"bandwidths must be a non-empty list of positive numbers, got {bandwidths}"
            )
        self.y = _as_points("y", y, min_points=2)
        self.bandwidths, self.chunk_size = tuple(bandwidths), chunk_size
        m, nh = self.y.shape[0], len(self.bandwidths)
        # The diagonal k(y_i, y_i) = number of bandwidths is removed for the unbiased estimate.
        self._kyy = (_rbf_sum(self.y, self.y, self.bandwidths, chunk_size) - m * nh) / (m * (m - 1))

    def __call__(self, x) -> float:
        x, y = _pair(x, self.y, min_points=2)
        n, m, nh = x.shape[0], y.shape[0], len(self.bandwidths)
        kxx = (_rbf_sum(x, x, self.bandwidths, self.chunk_size) - n * nh) / (n * (n - 1))
        kxy = _rbf_sum(x, y, self.bandwidths, self.chunk_size) / (n * m)
        return float(kxx + self._kyy - 2.0 * kxy)


class CoordinateFeatures(nn.Module):
    """The identity feature extractor: the 'features' of a point are its coordinates.

    ``num_features`` tells torchmetrics the feature size, so it does not probe
    the module with a dummy image.
    """

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def frechet_distance_coords(x, y) -> float:
    r"""FID on raw coordinates: the squared Frechet distance of the fitted Gaussians.

    .. math:: d^2 = |\mu_x - \mu_y|^2 + \mathrm{tr}\big(\Sigma_x + \Sigma_y
              - 2 (\Sigma_x \Sigma_y)^{1/2}\big)

    with sample means and unbiased sample covariances (x is passed as the
    'real' set, y as the 'fake' one; the value is symmetric). Like FID, this
    is the *squared* distance. Computed by torchmetrics'
    ``FrechetInceptionDistance`` with :class:`CoordinateFeatures` as its
    feature extractor, in float64. Needs at least 2 points per set.
    """
    # Imported here: torchmetrics' image module is slow to import and only this needs it.
    from torchmetrics.image.fid import FrechetInceptionDistance

    x, y = _pair(x, y, min_points=2)
    fid = FrechetInceptionDistance(feature=CoordinateFeatures(x.shape[1]))
    fid.update(x, real=True)
    fid.update(y, real=False)
    return float(fid.compute())
