"""Every method's loss is minimised by the oracle's prediction (reference 003, Theorem 18).

For L(f) = E[w(t) |f(x_t, t) - y|^2 / d] with y the conditional target, and any
perturbation g(x_t, t),

    L(f* + g) - L(f*) = E[w |g|^2] / d + 2 E[w g . (f* - y)] / d,

and the second term vanishes exactly when f* = E[y | x_t, t] (orthogonality of
the conditional expectation). With common random numbers (one draw of x_data,
t, eps for every candidate) the tests check both: the loss goes up, and the
cross term is zero within its Monte-Carlo error.
"""

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.losses import per_sample_loss, training_loss
from sfbench.methods import METHODS
from sfbench.model import NetworkModel
from sfbench.models import MLP
from sfbench.paths.parameterization import batch_coef

N = 40_000

PERTURBATIONS = {
    "constant": lambda f, x_t: f + 0.1 * torch.tensor([1.0, -1.0], dtype=f.dtype),
    "smooth": lambda f, x_t: f + 0.1 * torch.tanh(x_t.flip(1)),
    "scaled": lambda f, x_t: 1.05 * f,
}


def _draw(method_name, dataset, seed=0):
    method = METHODS[method_name]
    schedule = method.schedule()
    model = NetworkModel(MLP(dim=2, width=8, depth=1), method, schedule)
    mixture = get_dataset(dataset).mixture
    gen = torch.Generator().manual_seed(seed)
    x_data = torch.from_numpy(mixture.sample(N, np.random.default_rng(seed)))
    eps = torch.randn(N, 2, generator=gen, dtype=torch.float64)
    # The method's own training t-density: the loss the theorem is about.
    t = method.t_density(N, gen, schedule, torch.device("cpu")).to(torch.float64)
    c = schedule(t)
    x_t = batch_coef(c.alpha, x_data) * x_data + batch_coef(c.sigma, eps) * eps
    best = GaussianMixtureOracle(mixture, schedule).predict(x_t, t).get(method.target)
    return model, x_data, t, eps, x_t, best, method.weighting(c)


@pytest.mark.parametrize("dataset", ["8gaussians", "gmm_aniso"])
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_oracle_minimises_every_methods_loss(method_name, dataset):
    model, x_data, t, eps, x_t, best, w = _draw(method_name, dataset)
    base = per_sample_loss(model, x_data, t, eps, prediction=best)
    assert torch.isfinite(base).all()
    for kind, perturb in PERTURBATIONS.items():
        other = perturb(best, x_t)
        diff = per_sample_loss(model, x_data, t, eps, prediction=other) - base
        assert diff.mean() > 0, f"{kind}: perturbed prediction has a lower loss"
        # Split off the deterministic part w |g|^2 / d; what remains is the cross term.
        cross = diff - w * (other - best).pow(2).mean(1)
        se = cross.std() / N**0.5
        assert cross.mean().abs() < 4 * se, (
            f"{kind}: cross term {cross.mean():.2e} is {cross.mean().abs() / se:.1f} std errors "
            "from 0, so the oracle is not the conditional expectation of the target"
        )


@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_network_loss_is_finite_and_differentiable(method_name):
    method = METHODS[method_name]
    torch.manual_seed(0)
    model = NetworkModel(MLP(dim=2, width=16, depth=1), method, method.schedule())
    x = torch.from_numpy(get_dataset("8gaussians").sample(256, 0))
    loss = training_loss(model, x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
