"""SweepConfig: SWEEP.yaml read strictly, its cells validated against the solver registry."""

from __future__ import annotations

import pytest

from sfbench.errors import SfbenchError
from sfbench.sweep.cells import cell_key
from sfbench.sweep.config import Cell, SweepConfig, TrajectoryConfig

FULL = {
    "solvers": ["euler", "ddim"], "steps": [2, 8], "grids": ["uniform", "edm"],
    "adaptive": {"dopri5": [1e-2, 1e-4]}, "n_samples": 100, "seed": 12345, "device": "cpu",
    "held_out_seeds": [1, 2], "native": False,
    "options": {"ddim": {"eta": 0.5}},
    "trajectory": {"solver": "heun", "steps": 32, "n_points": 200},
    "straightness": {"n_points": 500, "steps": 100},
    "nll": {"n_points": 300, "rtol": 1e-5, "atol": 1e-5},
    "fid": {"kid_subsets": 100, "kid_subset_size": 1000, "device": "cpu"},
}


def test_a_full_config_round_trips_through_yaml(tmp_path):
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(FULL))
    config = SweepConfig.from_yaml(str(path))
    assert config.to_dict() == FULL
    assert config.trajectory == TrajectoryConfig("heun", 32, 200)
    assert SweepConfig.from_dict(config.to_dict()) == config


def test_defaults_of_an_empty_config():
    config = SweepConfig.from_dict({"solvers": ["euler"], "steps": [4]})
    assert config.grids == ["uniform"] and config.adaptive == {} and config.options == {}
    assert config.n_samples is None and config.seed == 0 and config.device == "cpu"
    assert config.trajectory is config.straightness is config.nll is config.fid is None


def test_cells_are_every_solver_grid_and_step_then_every_tolerance():
    cells = SweepConfig.from_dict({**FULL, "options": {}}).cells()
    assert [c.key for c in cells] == [
        "euler/steps2", "euler/steps8", "euler/edm/steps2", "euler/edm/steps8",
        "ddim/steps2", "ddim/steps8", "ddim/edm/steps2", "ddim/edm/steps8",
        "dopri5/tol0.01", "dopri5/tol0.0001",
    ]
    # without options a cell's key is exactly the shared cell_key
    assert all(c.key == cell_key(c.solver, c.steps, c.tolerance, c.grid) for c in cells)
    assert cells[-1].generate_options() == {"rtol": 1e-4, "atol": 1e-4}
    assert cells[2].generate_options() == {"grid": "edm"}


def test_solver_options_reach_the_cells_and_name_them():
    cells = SweepConfig.from_dict(FULL).cells()
    ddim = [c for c in cells if c.solver == "ddim"]
    assert all(c.options == {"eta": 0.5} for c in ddim)
    assert ddim[0].key == "ddim[eta=0.5]/steps2"
    assert ddim[0].generate_options() == {"grid": "uniform", "eta": 0.5}
    assert Cell("euler", 2, None, "uniform").key == "euler/steps2"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stpes": [4]}, "unknown key 'stpes'"),
        ({"trajectory": {"solver": "heun", "step": 3}}, "unknown key 'step' in trajectory"),
        ({"steps": [0]}, "steps[0] must be positive int"),
        ({"steps": 4}, "steps must be a list"),
        ({"seed": True}, "seed must be int"),
        ({"n_samples": 1.5}, "n_samples must be positive int or null"),
        ({"nll": {"rtol": "tight"}}, "nll.rtol must be positive float"),
        ({"adaptive": {"dopri5": [2.0]}}, "adaptive.dopri5 must be tolerances"),
        ({"device": "tpu"}, "device must be cpu or cuda"),
        ({"straightness": [500, 100]}, "straightness must be a mapping"),
    ],
)
def test_bad_keys_and_values_are_named(values, message):
    with pytest.raises(SfbenchError) as err:
        SweepConfig.from_dict(values)
    assert message in str(err.value)


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("solvers: [euler]\nstpes: [4]\n")
    with pytest.raises(SfbenchError, match=r"s\.yaml: .*unknown key 'stpes'"):
        SweepConfig.from_yaml(str(path))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"solvers": ["dopri5"], "steps": [4]}, "'dopri5' is adaptive"),
        ({"adaptive": {"euler": [1e-3]}}, "'euler' is fixed-step"),
        ({"solvers": ["euler"]}, "solvers need step counts"),
        ({}, "nothing to sample"),
        ({"solvers": ["euler"], "steps": [4], "trajectory": {"solver": "dopri5"}},
         "trajectory needs a fixed-step solver"),
        ({"solvers": ["euler"], "steps": [4], "options": {"ddim": {"eta": 1.0}}},
         "options given for 'ddim'"),
    ],
)
def test_cells_refuse_what_cannot_be_sampled(values, message):
    with pytest.raises(SfbenchError) as err:
        SweepConfig.from_dict(values).cells()
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"solvers": ["eulr"], "steps": [4]}, "unknown solver 'eulr'"),
        ({"solvers": ["euler"], "steps": [4], "grids": ["edmm"]}, "unknown grid 'edmm'"),
        ({"solvers": ["ddim"], "steps": [4], "options": {"ddim": {"etaa": 1.0}}}, "etaa"),
    ],
)
def test_unknown_registry_names_are_refused(values, message):
    with pytest.raises(ValueError) as err:
        SweepConfig.from_dict(values).cells()
    assert message in str(err.value)
