r"""The analytic oracle: exact predictions for Gaussian-mixture data.

For data sum_k w_k N(mu_k, S_k) and x_t = alpha x + sigma eps, the marginal
p_t is the mixture sum_k w_k N(alpha mu_k, C_k) with C_k = alpha^2 S_k + sigma^2 I.
With responsibilities r_k(x) proportional to w_k N(x; alpha mu_k, C_k),

    E[x_data | x_t = x] = sum_k r_k (mu_k + alpha S_k C_k^{-1} (x - alpha mu_k))
    E[eps    | x_t = x] = sum_k r_k  sigma C_k^{-1} (x - alpha mu_k)
    score(x)            = -sum_k r_k C_k^{-1} (x - alpha mu_k)

(Gaussian conditioning within each component, then the law of total
expectation). Computing eps directly, instead of from (x - alpha x0) / sigma,
keeps it exact at sigma = 0. The oracle satisfies the path-model interface
(:mod:`sfbench.model`), so every solver and metric runs on it unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sfbench.data.gmm import GaussianMixture, marginal_log_prob
from sfbench.model import as_time
from sfbench.paths import Prediction, Schedule


class GaussianMixtureOracle:
    """Exact (x0, eps, score) on the path ``schedule`` for mixture data.

    Its flow and its score are exact at every t, so every sampler samples it.
    """

    one_step = False
    has_score = True

    def __init__(self, mixture: GaussianMixture, schedule: Schedule):
        self.mixture, self.schedule = mixture, schedule
        self.sample_shape: tuple[int, ...] = (mixture.dim,)

    def _components(self, x: Tensor, t: Tensor):
        c = self.schedule(t)
        dtype, dev = x.dtype, x.device
        mu = torch.as_tensor(self.mixture.means, dtype=dtype, device=dev)  # [K, d]
        S = torch.as_tensor(self.mixture.covs, dtype=dtype, device=dev)  # [K, d, d]
        logw = torch.log(torch.as_tensor(self.mixture.weights, dtype=dtype, device=dev))
        a = c.alpha.reshape(-1, 1, 1, 1)
        s = c.sigma.reshape(-1, 1, 1, 1)
        C = a**2 * S[None] + s**2 * torch.eye(self.mixture.dim, dtype=dtype, device=dev)
        diff = x[:, None, :] - c.alpha.reshape(-1, 1, 1) * mu[None]  # [N, K, d]
        L = torch.linalg.cholesky(C)
        Cinv_diff = torch.cholesky_solve(diff.unsqueeze(-1), L).squeeze(-1)  # [N, K, d]
        logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
        log_comp = -0.5 * (
            (diff * Cinv_diff).sum(-1) + logdet + self.mixture.dim * math.log(2 * math.pi)
        )
        resp = torch.softmax(logw + log_comp, dim=-1)  # [N, K]
        return c, mu, S, Cinv_diff, resp

    def predict(self, x: Tensor, t: Tensor | float) -> Prediction:
        t = as_time(t, x)
        c, mu, S, Cinv_diff, resp = self._components(x, t)
        x0_k = mu[None] + c.alpha.reshape(-1, 1, 1) * torch.einsum("kij,nkj->nki", S, Cinv_diff)
        eps_k = c.sigma.reshape(-1, 1, 1) * Cinv_diff
        x0 = (resp[..., None] * x0_k).sum(1)
        eps = (resp[..., None] * eps_k).sum(1)
        return Prediction(x_t=x, x0=x0, eps=eps, coeffs=c)

    def score(self, x: Tensor, t: Tensor | float) -> Tensor:
        """The exact score, finite even where sigma = 0."""
        t = as_time(t, x)
        _, _, _, Cinv_diff, resp = self._components(x, t)
        return -(resp[..., None] * Cinv_diff).sum(1)

    def log_prob(self, x: Tensor, t: Tensor | float) -> Tensor:
        """Exact log p_t(x)."""
        t = as_time(t, x)
        c = self.schedule(t)
        return marginal_log_prob(self.mixture, x, c.alpha, c.sigma)
