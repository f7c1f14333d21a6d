"""Every solver runs on every method and every grid, with the oracle and an untrained network."""

import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.model import NetworkModel
from sfbench.models import MLP
from sfbench.sampling import generate
from sfbench.solvers import GRIDS, SOLVERS

N_SAMPLES = 300


def models(method_name):
    method = METHODS[method_name]
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, method.schedule())
    torch.manual_seed(0)
    network = NetworkModel(MLP(dim=2, width=32, depth=2), method, method.schedule())
    return {"oracle": oracle, "network": network}


def cases(spec):
    if spec.adaptive:
        return [(None, "uniform")]
    return [(steps, "uniform") for steps in (1, 4, 25)] + [
        (steps, grid) for grid in sorted(GRIDS) if grid != "uniform" for steps in (2, 12)
    ]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_solver_gives_finite_samples(method):
    for model_kind, model in models(method).items():
        for solver, spec in SOLVERS.items():
            for steps, grid in cases(spec):
                result = generate(model, solver, steps, N_SAMPLES, seed=0, grid=grid)
                where = (method, model_kind, solver, steps, grid)
                assert result.samples.shape == (N_SAMPLES, 2), where
                assert result.samples.dtype == torch.float32, where
                assert torch.isfinite(result.samples).all(), where


@pytest.mark.parametrize("method", sorted(METHODS))
def test_stochastic_options_give_finite_samples(method):
    # The non-default branches: churn, the reverse-diffusion predictor, several corrector steps.
    model = models(method)["oracle"]
    runs = [
        ("edm_heun", {"s_churn": 40.0, "s_noise": 1.003}),
        ("pc", {"predictor": "reverse_diffusion", "corrector_steps": 2}),
        ("ddim", {"eta": 0.5}),
    ]
    for solver, options in runs:
        for grid in GRIDS:
            result = generate(model, solver, 10, N_SAMPLES, seed=0, grid=grid, **options)
            assert torch.isfinite(result.samples).all(), (method, solver, grid)
