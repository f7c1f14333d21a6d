"""diffusers' prediction types convert to the exact (x0, eps): the Gaussian-mixture oracle
served as a diffusers-style network at timestep j, through the loader's wrapper class."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sfbench.data import get_dataset
from sfbench.errors import ExternalModelError
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.external.wrappers import DiscreteTimeModel, diffusers_timestep
from sfbench.paths import DDPMSchedule


class _Output:
    """What diffusers' UNet2DModel returns: the prediction in ``.sample``."""

    def __init__(self, sample):
        self.sample = sample


class OracleAsDiffusersNet(nn.Module):
    """The oracle's exact prediction at diffusers' timestep j, as ``prediction_type`` says."""

    def __init__(self, oracle, prediction_type):
        super().__init__()
        self.oracle, self.prediction_type = oracle, prediction_type

    def forward(self, x, j):
        T = self.oracle.schedule.num_steps
        t = 1.0 - (j.double() + 1.0) / T  # diffusers' timestep j is step k = j + 1
        p = self.oracle.predict(x, t)
        alpha = p.coeffs.alpha[:, None]
        sigma = p.coeffs.sigma[:, None]
        out = {"epsilon": p.eps, "sample": p.x0,
               "v_prediction": alpha * p.eps - sigma * p.x0}[self.prediction_type]
        return _Output(out)


@pytest.fixture(scope="module")
def oracle():
    schedule = DDPMSchedule(beta_schedule="squaredcos_cap_v2", num_steps=200)
    return GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, schedule)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
@pytest.mark.parametrize("k", [200, 117, 1])
def test_prediction_types_give_the_oracles_x0_and_eps(oracle, prediction_type, k):
    net = OracleAsDiffusersNet(oracle, prediction_type)
    model = DiscreteTimeModel(net, oracle.schedule, prediction_type, (2,))
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(k))
    t = float(oracle.schedule.t_of_step(k))
    ours, exact = model.predict(x, t), oracle.predict(x, t)
    # eps from an x0 prediction divides by sigma (0.0016 at k = 1 on the cosine schedule),
    # x0 from an eps prediction by alpha (1e-4 at k = T); the rest is exact.
    torch.testing.assert_close(ours.x0, exact.x0, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(ours.eps, exact.eps, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(ours.velocity, exact.velocity, rtol=1e-7, atol=1e-7)


def test_v_is_not_sfbench_velocity(oracle):
    """diffusers' v (Salimans & Ho) is not dx/dt: reading it as epsilon is visibly wrong."""
    net = OracleAsDiffusersNet(oracle, "v_prediction")
    wrong = DiscreteTimeModel(net, oracle.schedule, "epsilon", (2,))
    x = torch.randn(16, 2, dtype=torch.float64)
    assert not torch.allclose(wrong.predict(x, 0.5).x0, oracle.predict(x, 0.5).x0, atol=1e-2)


def test_between_lattice_points_the_timestep_is_fractional(oracle):
    s = oracle.schedule
    t = torch.tensor([0.0, 1 - 1 / 200, 0.4975, 0.5], dtype=torch.float64)
    j = diffusers_timestep(s, t, torch.float64)
    assert j[[0, 1, 3]].tolist() == [199.0, 0.0, 99.0]
    assert j[2] == pytest.approx(99.5, abs=1e-12)
    t32 = s.t_of_step(torch.arange(1, 201)).float()  # whole steps, rounded to float32
    assert torch.equal(diffusers_timestep(s, t32.double(), torch.float32),
                       torch.arange(200, dtype=torch.float64))


def test_unknown_prediction_type_is_refused(oracle):
    with pytest.raises(ValueError, match="unknown prediction_type 'mu'"):
        DiscreteTimeModel(nn.Identity(), oracle.schedule, "mu", (2,))


def test_a_wrong_output_shape_is_named(oracle):
    model = DiscreteTimeModel(lambda_net(lambda x, j: x[:, :1]), oracle.schedule, "epsilon",
                              (2,))
    with pytest.raises(ExternalModelError, match=r"shape \[3, 1\]; expected \[3, 2\]"):
        model.predict(torch.zeros(3, 2), 0.5)


class lambda_net(nn.Module):  # noqa: N801 - reads as a function
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)
