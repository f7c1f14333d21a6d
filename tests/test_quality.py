"""Every method learns: on 8gaussians and moons a small CPU budget reaches the sampling floor.

Threshold, and why: two independent draws of n points from the *same*
distribution are already at W2 = floor > 0 (finite-sample noise; about 0.33
on 8gaussians and 0.2 on moons for n = 1000). A model is called trained when
its samples are within 1.6 x that floor of the test set, while an untrained
network of the same method is at least 3 x further away than the trained one
(measured: trained 1.0-1.15 x floor; untrained 0.9 to 200, so both margins
are wide enough not to flake yet tight enough that a broken method fails).
"""

from __future__ import annotations

import pytest
import torch

from sfbench.checkpoint import build_model
from sfbench.data import get_dataset
from sfbench.eval.distances import wasserstein2
from sfbench.methods import METHODS
from sfbench.sampling import generate
from sfbench.train import TrainConfig, train

N = 1000
NET = {"kind": "mlp", "dim": 2, "width": 64, "depth": 3, "activation": "silu",
       "time_embed_dim": 32}
BUDGET = dict(steps=1500, batch_size=256, lr=3e-3, warmup_steps=50, network=NET)


@pytest.fixture(scope="module", params=["8gaussians", "moons"])
def dataset(request):
    d = get_dataset(request.param)
    train_x, test = d.sample(10000, seed=0), d.sample(N, seed=0, split="test")
    floor = wasserstein2(d.sample(N, seed=1, split="test"), test)
    return d.name, train_x, test, floor


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_trains_to_the_sampling_floor(method, dataset):
    name, train_x, test, floor = dataset
    torch.set_num_threads(1)
    trained = train(TrainConfig(method=method, **BUDGET), train_x, progress=False).model
    untrained = build_model(method, {}, NET).eval()
    w2 = wasserstein2(generate(trained, "heun", 32, N, seed=0).samples, test)
    w2_untrained = wasserstein2(generate(untrained, "heun", 32, N, seed=0).samples, test)
    assert w2 < 1.6 * floor, f"{method} on {name}: W2 {w2:.3f}, floor {floor:.3f}"
    assert w2_untrained > 3 * w2, f"{method} on {name}: untrained {w2_untrained:.3f}"
