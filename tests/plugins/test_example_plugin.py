"""The example plug-in's method, solver and metric are right (imported from its installation).

The solver's order is measured against exact answers: the closed-form flow of
one-Gaussian data (tests/solvers/test_solver_convergence.py derives it) and,
where trajectories curve, RK4 with 512 steps on the ``gmm_aniso`` oracle
(error ~1e-9, below Ralston's at 64 steps by 10^5). The metric is checked
against POT's sliced Wasserstein distance along the same directions and
against the closed form of a shifted point set.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfbench.data import get_dataset
from sfbench.data.gmm import GaussianMixture
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.paths import RectifiedFlowSchedule
from sfbench.solvers import CountingModel, NoiseSource, rk4, uniform_grid

pytestmark = pytest.mark.usefixtures("example_modules")

MEAN, STD = np.array([1.0, -2.0]), np.array([0.5, 2.0])
STEPS = [16, 32, 64]


def start(n=32):
    noise = NoiseSource(seed=3, n_samples=n)
    return noise, noise.initial((2,), 1.0, torch.float64)


def slope(errors) -> float:
    return float(np.polyfit(np.log(STEPS), np.log(errors), 1)[0])


def errors(oracle, exact) -> list[float]:
    from sfbench_plugin_example.solver import RALSTON

    noise, z = start()
    return [(RALSTON.fn(oracle, z, uniform_grid(n, 0.0, 1.0), noise) - exact(z)).abs().max()
            .item() for n in STEPS]


def test_ralston_converges_at_its_declared_order_on_the_closed_form_flow():
    from sfbench_plugin_example.solver import RALSTON

    mixture = GaussianMixture(np.ones(1), MEAN[None], np.diag(STD**2)[None])
    oracle = GaussianMixtureOracle(mixture, RectifiedFlowSchedule())
    # the flow from z ends at m + s z (x_t = t m + std_t z, std_1 = s)
    errs = errors(oracle, lambda z: torch.tensor(MEAN) + torch.tensor(STD) * z)
    assert abs(slope(errs) + RALSTON.order) < 0.3, errs  # measured -2.05


def test_ralston_converges_at_its_declared_order_on_a_mixture():
    from sfbench_plugin_example.solver import RALSTON

    oracle = GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, RectifiedFlowSchedule())
    noise, _ = start()
    errs = errors(oracle, lambda z: rk4(oracle, z, uniform_grid(512, 0.0, 1.0), noise))
    assert abs(slope(errs) + RALSTON.order) < 0.3, errs  # measured -1.96


def test_ralston_makes_its_declared_evaluations_per_step():
    from sfbench_plugin_example.solver import RALSTON

    oracle = CountingModel(GaussianMixtureOracle(get_dataset("8gaussians").mixture,
                                                 RectifiedFlowSchedule()))
    noise, z = start()
    RALSTON.fn(oracle, z, uniform_grid(7, 0.0, 1.0), noise)
    assert oracle.nfe == 7 * int(RALSTON.nfe_per_step)


def test_sliced_w2_equals_pot_along_the_same_directions():
    import ot
    from sfbench_plugin_example.metric import N_PROJECTIONS, SW2, projections, sliced_w2

    rng = np.random.default_rng(1)
    theta = projections(2)
    for n, m in ((200, 200), (300, 170)):  # equal sizes and the quantile-matching case
        x, y = rng.normal(size=(n, 2)), 1.5 * rng.normal(size=(m, 2)) + 0.3
        expected = ot.sliced_wasserstein_distance(x, y, n_projections=N_PROJECTIONS, p=2,
                                                  projections=theta)
        assert sliced_w2(x, y) == pytest.approx(expected, rel=1e-12)
        assert SW2.build(y)(x) == {"sw2": pytest.approx(expected, rel=1e-12)}


def test_sliced_w2_of_a_shift_is_its_projected_length():
    from sfbench_plugin_example.metric import projections, sliced_w2

    x = np.random.default_rng(2).normal(size=(150, 3))
    shift = np.array([0.5, -1.0, 2.0])
    # every 1-D projection moves by theta . shift, so W2 along theta is |theta . shift|
    expected = np.sqrt(np.mean((shift @ projections(3)) ** 2))
    assert sliced_w2(x + shift, x) == pytest.approx(expected, rel=1e-12)
    assert sliced_w2(x, x) == 0.0


def test_logit_normal_t_density():
    from sfbench_plugin_example.method import RF_LOGIT_NORMAL

    schedule = RF_LOGIT_NORMAL.schedule()
    gen = torch.Generator().manual_seed(0)
    t = RF_LOGIT_NORMAL.t_density(200_000, gen, schedule, torch.device("cpu")).double()
    assert t.min() > 0 and t.max() < 1
    logit = torch.log(t / (1 - t))  # N(0, 1) by construction (Esser et al. 2024)
    assert abs(logit.mean().item()) < 0.01 and abs(logit.std().item() - 1) < 0.01
    # its density at t = 1/2 is phi(0) / (t (1 - t)) = 4 / sqrt(2 pi) = 1.6 (uniform: 1)
    middle = ((t > 0.45) & (t < 0.55)).double().mean().item()
    assert middle == pytest.approx(0.1 * 4 / np.sqrt(2 * np.pi), rel=0.03)
