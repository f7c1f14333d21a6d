"""Declared capabilities of path models: what each model says it can do, and who reads it.

Samplers and metrics read ``sample_shape``, ``one_step`` and ``has_score``
from the model instead of probing for a ``method`` or a ``dim`` attribute,
so a model of any class (here a bare one with no ``method``) is checked the
same way as a trained network.
"""

from __future__ import annotations

import pytest
import torch

from sfbench.checkpoint import build_model
from sfbench.data import get_dataset
from sfbench.errors import CheckpointError
from sfbench.eval.nll import nll_nats
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.eval.straightness import straightness
from sfbench.methods import get_method
from sfbench.model import NetworkModel, sample_dim
from sfbench.models import MLP, UNet
from sfbench.models.registry import NETWORKS, build_network, network_sample_shape
from sfbench.sampling import generate
from sfbench.solvers import CountingModel

MIXTURE = get_dataset("8gaussians").mixture


def oracle(method="rectified_flow"):
    return GaussianMixtureOracle(MIXTURE, get_method(method).schedule())


def tiny_network(method="cfm", net=None):
    m = get_method(method)
    torch.manual_seed(0)
    return NetworkModel(net or MLP(dim=2, width=8, depth=1), m, m.schedule())


class Declared:
    """A path model of no known class: the oracle's predictions, capabilities as declared."""

    def __init__(self, *, one_step=False, has_score=True):
        self.inner = oracle()
        self.schedule, self.sample_shape = self.inner.schedule, self.inner.sample_shape
        self.one_step, self.has_score = one_step, has_score

    def predict(self, x, t):
        return self.inner.predict(x, t)


def capabilities(model):
    return model.sample_shape, model.one_step, model.has_score


def test_the_oracle_declares_an_exact_flow_with_a_score():
    assert capabilities(oracle()) == ((2,), False, True)
    assert generate(oracle(), "euler_maruyama", 4, 5, seed=0).samples.shape == (5, 2)


def test_networks_declare_their_sample_shape_and_their_method_the_rest():
    assert capabilities(tiny_network("cfm")) == ((2,), False, True)
    assert capabilities(tiny_network("ddpm")) == ((2,), False, True)
    # Trained on coupled pairs: the (x0, eps) it predicts do not give the score.
    assert capabilities(tiny_network("reflow")) == ((2,), False, False)
    assert capabilities(tiny_network("distill")) == ((2,), True, False)
    unet = UNet(shape=(1, 8, 8), base_channels=8, channel_mult=(1, 2))
    model = tiny_network("rectified_flow", unet)
    assert model.sample_shape == (1, 8, 8) and sample_dim(model) == 64
    # Samplers draw flat vectors of prod(sample_shape) values; the U-Net reshapes them.
    assert generate(model, "euler", 1, 3, seed=0).samples.shape == (3, 64)


def test_a_counted_model_declares_what_it_wraps():
    for model in (tiny_network("distill"), oracle()):
        assert capabilities(CountingModel(model)) == capabilities(model)


def test_a_stochastic_sampler_refuses_a_model_without_a_score():
    no_score = Declared(has_score=False)
    for solver, options in (("euler_maruyama", {}), ("pc", {}), ("ddim", {"eta": 1.0}),
                            ("edm_heun", {"s_churn": 1.0})):
        with pytest.raises(ValueError, match="Declared has no score.*stochastic sampler"):
            generate(no_score, solver, 4, 5, seed=0, **options)
    with pytest.raises(ValueError, match="reflow has no score"):
        generate(tiny_network("reflow"), "euler_maruyama", 4, 5, seed=0)
    # An ODE solver needs only the velocity.
    assert torch.isfinite(generate(no_score, "heun", 4, 5, seed=0).samples).all()


def test_one_step_is_read_from_the_declaration_not_the_method():
    one_step = Declared(one_step=True)
    assert generate(one_step, "euler", 1, 4, seed=0).nfe == 1
    with pytest.raises(ValueError, match="Declared is a one-step model"):
        generate(one_step, "heun", 4, 4, seed=0)
    with pytest.raises(ValueError, match="one-step model"):
        straightness(one_step, 4, 0)
    with pytest.raises(ValueError, match="one-step model"):
        nll_nats(one_step, torch.zeros(3, 2))


def test_the_network_registry_builds_every_kind_and_names_them_on_error():
    assert set(NETWORKS) == {"mlp", "unet"} and NETWORKS["unet"] is UNet
    specs = {"mlp": {"kind": "mlp", "dim": 3, "width": 8, "depth": 1},
             "unet": {"kind": "unet", "shape": [1, 8, 8], "base_channels": 8}}
    for kind, spec in specs.items():
        net = build_network(spec)
        assert isinstance(net, NETWORKS[kind])
        assert tuple(net.sample_shape) == network_sample_shape(spec)
    model = build_model("cfm", {}, specs["mlp"])
    assert capabilities(model) == ((3,), False, True)
    with pytest.raises(CheckpointError, match="unknown network kind 'transformer'; valid: mlp"):
        build_network({"kind": "transformer"})
