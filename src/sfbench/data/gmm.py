"""Gaussian-mixture data: the datasets whose every path marginal is known exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class GaussianMixture:
    """sum_k w_k N(mu_k, Sigma_k) in d dimensions (float64 parameters)."""

    weights: np.ndarray  # [K]
    means: np.ndarray  # [K, d]
    covs: np.ndarray  # [K, d, d]

    def __post_init__(self):
        w, m, c = (np.asarray(a, dtype=np.float64) for a in (self.weights, self.means, self.covs))
        if m.ndim != 2 or c.shape != (m.shape[0], m.shape[1], m.shape[1]) or w.shape != m.shape[:1]:
            raise ValueError(
                f"inconsistent mixture shapes: weights {w.shape}, means {m.shape}, covs {c.shape}"
            )
        if np.any(w < 0) or not math.isclose(w.sum(), 1.0, rel_tol=1e-9):
            raise ValueError(f"mixture weights must be non-negative and sum to 1, got {w}")
        if np.any(np.linalg.eigvalsh(c) <= 0):
            raise ValueError("mixture covariances must be positive definite")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "covs", c)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        chol = np.linalg.cholesky(self.covs)
        z = rng.standard_normal((n, self.dim))
        return self.means[k] + np.einsum("nij,nj->ni", chol[k], z)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of the mixture at x (shape [N, d])."""
        return marginal_log_prob(
            self, x, torch.ones((), dtype=x.dtype), torch.zeros((), dtype=x.dtype)
        )


def marginal_log_prob(gmm: GaussianMixture, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """log p(x) for x = alpha x_data + sigma eps: the mixture
    sum_k w_k N(alpha mu_k, alpha^2 Sigma_k + sigma^2 I). alpha, sigma are scalars or [N]."""
    dtype, dev = x.dtype, x.device
    mu = torch.as_tensor(gmm.means, dtype=dtype, device=dev)
    cov = torch.as_tensor(gmm.covs, dtype=dtype, device=dev)
    logw = torch.log(torch.as_tensor(gmm.weights, dtype=dtype, device=dev))
    a = alpha.reshape(-1, 1, 1, 1)
    s = sigma.reshape(-1, 1, 1, 1)
    eye = torch.eye(gmm.dim, dtype=dtype, device=dev)
    C = a**2 * cov[None] + s**2 * eye  # [N or 1, K, d, d]
    diff = x[:, None, :] - alpha.reshape(-1, 1, 1) * mu[None]  # [N, K, d]
    L = torch.linalg.cholesky(C)
    sol = torch.cholesky_solve(diff.unsqueeze(-1), L).squeeze(-1)
    maha = (diff * sol).sum(-1)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    comp = -0.5 * (maha + logdet + gmm.dim * math.log(2 * math.pi))
    return torch.logsumexp(logw + comp, dim=-1)


def eight_gaussians() -> GaussianMixture:
    """Eight equal-weight isotropic Gaussians on a circle of radius 2 sqrt(2),
    std 1 / (2 sqrt(2)) (FFJORD's 8gaussians: scale 4, std 0.5, divided by sqrt(2))."""
    angles = np.arange(8) * np.pi / 4
    means = 2 * np.sqrt(2) * np.stack([np.cos(angles), np.sin(angles)], 1)
    var = 1.0 / 8.0
    return GaussianMixture(np.full(8, 1 / 8), means, np.tile(var * np.eye(2), (8, 1, 1)))


def twenty_five_gaussians() -> GaussianMixture:
    """A 5 x 5 grid with spacing 1.5 centred at 0, std 0.15 per component."""
    g = np.arange(-2, 3) * 1.5
    means = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    return GaussianMixture(np.full(25, 1 / 25), means, np.tile(0.15**2 * np.eye(2), (25, 1, 1)))


def anisotropic_gaussians() -> GaussianMixture:
    """Three unequal, correlated components: a test of everything isotropic data hides."""
    means = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    covs = np.array(
        [[[0.6, 0.4], [0.4, 0.5]], [[0.2, -0.1], [-0.1, 0.8]], [[1.0, 0.0], [0.0, 0.1]]]
    )
    return GaussianMixture(np.array([0.5, 0.3, 0.2]), means, covs)


def from_spec(spec: dict) -> GaussianMixture:
    """A mixture from a JSON-style dict with ``weights``, ``means``, ``covs``."""
    missing = {"weights", "means", "covs"} - set(spec)
    if missing:
        raise ValueError(f"gmm spec is missing {', '.join(sorted(missing))}")
    return GaussianMixture(
        np.asarray(spec["weights"]), np.asarray(spec["means"]), np.asarray(spec["covs"])
    )
