"""Every solver runs on every method, with the oracle and with an untrained network."""

import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.model import NetworkModel
from sfbench.models import MLP
from sfbench.sampling import generate
from sfbench.solvers import SOLVERS

N_SAMPLES = 300


def models(method_name):
    method = METHODS[method_name]
    oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, method.schedule())
    torch.manual_seed(0)
    network = NetworkModel(MLP(dim=2, width=32, depth=2), method, method.schedule())
    return {"oracle": oracle, "network": network}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_solver_gives_finite_samples(method):
    for model_kind, model in models(method).items():
        for solver, spec in SOLVERS.items():
            for steps in ([None] if spec.adaptive else [1, 4, 25]):
                result = generate(model, solver, steps, N_SAMPLES, seed=0)
                where = (method, model_kind, solver, steps)
                assert result.samples.shape == (N_SAMPLES, 2), where
                assert result.samples.dtype == torch.float32, where
                assert torch.isfinite(result.samples).all(), where
