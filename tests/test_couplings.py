"""Couplings: the product coupling and the exact minibatch optimal-transport coupling."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from sfbench.couplings import COUPLINGS, independent, minibatch_ot, ot_assignment
from sfbench.data import get_dataset
from sfbench.losses import training_loss
from sfbench.methods import METHODS
from sfbench.model import NetworkModel
from sfbench.models import MLP


def batch(n=128, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x_data = torch.from_numpy(get_dataset("8gaussians").sample(n, seed))
    return x_data, torch.randn(n, 2, generator=gen)


def cost(x_data, noise):
    return (x_data - noise).pow(2).sum(1).sum().item()


def test_registry():
    assert set(COUPLINGS) == {"independent", "ot", "pairs"}
    assert COUPLINGS["independent"] is independent and COUPLINGS["ot"] is minibatch_ot
    # stored pairs are kept as given: the noise is the stored x0, not a fresh draw
    assert COUPLINGS["pairs"] is independent
    assert METHODS["ot_cfm"].coupling == "ot" and METHODS["cfm"].coupling == "independent"
    # ot_cfm is the cfm path, target and loss; only the pairing differs
    for field in ("target", "weighting", "t_density", "output_scaling"):
        assert getattr(METHODS["ot_cfm"], field) == getattr(METHODS["cfm"], field)
    assert METHODS["ot_cfm"].schedule().describe() == METHODS["cfm"].schedule().describe()


def test_ot_pairs_are_a_permutation_of_the_noise():
    x_data, noise = batch()
    x_out, paired = minibatch_ot(x_data, noise)
    assert x_out is x_data and paired.shape == noise.shape
    # same multiset of noise vectors: nothing repeated, nothing dropped
    sort = lambda z: z[np.lexsort(z.numpy().T)]  # noqa: E731
    torch.testing.assert_close(sort(paired), sort(noise), rtol=0, atol=0)


def test_ot_assignment_is_optimal():
    x_data, noise = batch(64)
    paired = minibatch_ot(x_data, noise)[1]
    rows, cols = linear_sum_assignment(torch.cdist(noise, x_data).pow(2).double().numpy())
    assert cost(x_data, paired) == pytest.approx(cost(x_data[cols], noise[rows]), rel=1e-6)
    assert cost(x_data, paired) < 0.7 * cost(x_data, noise)  # far below the product coupling


def test_ot_assignment_brute_force_on_a_tiny_batch():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)
    best = min(itertools.permutations(range(6)),
               key=lambda p: (a[list(p)] - b).pow(2).sum().item())
    assert ot_assignment(a, b).tolist() == list(best)


def test_ot_coupling_is_deterministic_and_ignores_the_generator():
    x_data, noise = batch()
    first = minibatch_ot(x_data, noise, torch.Generator().manual_seed(0))[1]
    second = minibatch_ot(x_data, noise, torch.Generator().manual_seed(1))[1]
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_ot_sorts_one_dimensional_batches():
    # In 1-D the OT map is monotone: the k-th smallest noise goes to the k-th smallest datum.
    gen = torch.Generator().manual_seed(5)
    x_data, noise = 3 * torch.randn(50, 1, generator=gen), torch.randn(50, 1, generator=gen)
    paired = minibatch_ot(x_data, noise)[1]
    order = x_data[:, 0].argsort()
    assert bool(torch.all(paired[order, 0].diff() > 0))


def test_ot_rejects_unequal_batches():
    with pytest.raises(ValueError, match="equal size"):
        ot_assignment(torch.zeros(3, 2), torch.zeros(4, 2))


def test_training_loss_uses_the_coupling_and_the_generator(monkeypatch):
    method = METHODS["ot_cfm"]
    torch.manual_seed(0)
    model = NetworkModel(MLP(dim=2, width=16, depth=1), method, method.schedule())
    x = torch.from_numpy(get_dataset("8gaussians").sample(256, 0))
    a = training_loss(model, x, torch.Generator().manual_seed(1))
    b = training_loss(model, x, torch.Generator().manual_seed(1))
    c = training_loss(model, x, torch.Generator().manual_seed(2))
    assert torch.isfinite(a) and a.item() == b.item() != c.item()
    a.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # training_loss pairs through the method's coupling and hands it the generator
    seen = []

    def spy(x_data, noise, generator):
        seen.append(generator)
        return minibatch_ot(x_data, noise, generator)

    monkeypatch.setitem(COUPLINGS, "ot", spy)
    gen = torch.Generator().manual_seed(1)
    assert training_loss(model, x, gen).item() == a.item()
    assert seen == [gen]
