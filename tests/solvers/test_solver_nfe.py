"""NFE is counted at the model, and the counts are exact."""

import pytest
import torch
from call_log import CallLog

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.model import NetworkModel
from sfbench.models import MLP
from sfbench.sampling import generate
from sfbench.solvers import GRIDS, SOLVERS, CountingModel, NoiseSource, uniform_grid

EVALS_PER_STEP = {
    "euler": 1, "heun": 2, "midpoint": 2, "rk4": 4, "euler_maruyama": 1, "ddim": 1,
    "ddpm_ancestral": 1, "pc": 2, "dpm_solver_pp_2m": 1, "edm_heun": 2,
}


def expected_nfe(solver, steps, schedule):
    """EVALS_PER_STEP x steps, less the correction EDM skips on a last step onto sigma = 0."""
    sigma_end = float(schedule(torch.tensor(schedule.t_end, dtype=torch.float64)).sigma)
    onto_data = solver == "edm_heun" and sigma_end == 0.0
    return EVALS_PER_STEP[solver] * steps - onto_data


def oracle(method="rectified_flow"):
    return GaussianMixtureOracle(get_dataset("8gaussians").mixture, METHODS[method].schedule())


def test_every_fixed_grid_solver_is_registered_with_a_count():
    fixed = {name for name, spec in SOLVERS.items() if not spec.adaptive}
    assert fixed == set(EVALS_PER_STEP)


@pytest.mark.parametrize("solver", sorted(EVALS_PER_STEP))
@pytest.mark.parametrize("steps", [1, 3, 10])
def test_fixed_grid_counts(solver, steps):
    # Counted by an independent call log, on every path (the flow paths take
    # special first / last steps in dpm_solver_pp_2m and edm_heun).
    for method in ("rectified_flow", "probability_flow", "dsm"):
        log = CallLog(oracle(method))
        model = CountingModel(log)
        noise = NoiseSource(0, 16)
        x = noise.initial((2,), model.schedule.prior_std())
        for grid in GRIDS:
            model.reset()
            log.calls.clear()
            SOLVERS[solver].fn(model, x, GRIDS[grid](steps, model.schedule), noise)
            expected = expected_nfe(solver, steps, model.schedule)
            assert model.nfe == len(log.calls) == expected, (method, grid)


@pytest.mark.parametrize("corrector_steps", [0, 1, 3])
def test_pc_counts_one_plus_corrector_steps(corrector_steps):
    model = CountingModel(oracle("dsm"))
    noise = NoiseSource(0, 8)
    x = noise.initial((2,), model.schedule.prior_std())
    SOLVERS["pc"].fn(model, x, uniform_grid(7, 0.0, 1.0), noise, corrector_steps=corrector_steps)
    assert model.nfe == (1 + corrector_steps) * 7


@pytest.mark.parametrize(("method", "nfe"), [
    ("probability_flow", 18), ("cfm", 18), ("dsm", 18), ("rectified_flow", 17),
])
def test_edm_heun_costs_2n_or_2n_minus_1_onto_sigma_zero(method, nfe):
    # Karras et al. 2022, Algorithm 2: no correction on a step onto sigma = 0, which only
    # rectified flow's grid reaches (cfm ends at sigma_min = 1e-4); churn costs nothing.
    for churn in (0.0, 40.0):
        model = CountingModel(oracle(method))
        noise = NoiseSource(0, 8)
        x = noise.initial((2,), model.schedule.prior_std())
        for grid in GRIDS:
            model.reset()
            SOLVERS["edm_heun"].fn(model, x, GRIDS[grid](9, model.schedule), noise,
                                   s_churn=churn)
            assert model.nfe == nfe, (grid, churn)


@pytest.mark.parametrize("solver", sorted(EVALS_PER_STEP))
@pytest.mark.parametrize("method_name", ["ddpm", "rectified_flow"])
def test_generate_reports_nfe_of_one_batch(solver, method_name):
    method = METHODS[method_name]
    network = NetworkModel(MLP(dim=2, width=16, depth=1), method, method.schedule())
    for grid in GRIDS:
        result = generate(network, solver, 5, 50, seed=0, batch_size=20, grid=grid)
        assert result.nfe == expected_nfe(solver, 5, network.schedule)
        assert result.nfe_per_batch == [result.nfe] * 3


def test_dopri5_count_is_the_number_of_calls():
    log = CallLog(oracle("probability_flow"))
    result = generate(log, "dopri5", None, 40, seed=0, dim=2, batch_size=15, dtype=torch.float64)
    assert sum(result.nfe_per_batch) == len(log.calls)
    assert result.nfe == max(result.nfe_per_batch) > 6  # more than one dopri5 step
    assert set(log.calls) == {15, 10}  # one call is one batched evaluation


@pytest.mark.parametrize("method", sorted(METHODS))
def test_dopri5_evaluates_only_inside_the_interval(method):
    # torchdiffeq would probe far beyond t_end (t ~ 7) to choose its first step,
    # and step past t_end; the VP schedule is NaN there.
    log = CallLog(oracle(method))
    result = generate(log, "dopri5", None, 32, seed=0, dim=2, dtype=torch.float64)
    schedule = log.schedule
    assert schedule.t_start <= min(log.times) and max(log.times) <= schedule.t_end
    assert torch.isfinite(result.samples).all()


def test_tighter_tolerance_costs_more():
    model = oracle()
    loose = generate(model, "dopri5", None, 64, seed=0, rtol=1e-3, atol=1e-3)
    tight = generate(model, "dopri5", None, 64, seed=0, rtol=1e-7, atol=1e-7)
    assert tight.nfe > loose.nfe


def test_counter_reset():
    model = CountingModel(oracle())
    model.predict(torch.zeros(3, 2), 0.5)
    model.predict(torch.zeros(3, 2), torch.full((3,), 0.5))
    assert model.nfe == 2
    model.reset()
    assert model.nfe == 0
    assert model.schedule is model.model.schedule


def test_registry_nfe_per_step_agrees_with_the_counts():
    # What the solver table tells readers is what the counts above measure.
    for name, per_step in EVALS_PER_STEP.items():
        declared = SOLVERS[name].nfe_per_step
        if name == "pc":  # "1 + corrector_steps", at the default corrector_steps = 1
            assert declared == "1 + corrector_steps" and SOLVERS[name].defaults[
                "corrector_steps"] + 1 == per_step
        else:
            assert int(declared.split()[0]) == per_step, (name, declared)
    assert SOLVERS["dopri5"].nfe_per_step == "adaptive"
