"""The sweep's statistical protocol: held-out noise seeds and the native-settings column.

The native settings are the solver registry's (``SolverSpec.native``); these
tests pin them with stand-ins (:func:`natives`) so they check the sweep's use
of them, not the registry's values.
"""

from __future__ import annotations

import argparse
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from sfbench.data import get_dataset
from sfbench.errors import SfbenchError
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import get_method
from sfbench.sampling import generate
from sfbench.solvers.registry import SOLVERS
from sfbench.sweep.cells import npz_key
from sfbench.sweep.config import SweepConfig
from sfbench.sweep.flags import add_flags, check_one_source, config_from_flags
from sfbench.sweep.record import CellResult, SweepRecord
from sfbench.sweep.run import run_sweep


class _WithNative:
    """A registry entry with a given native setting; everything else is the real spec's."""

    def __init__(self, spec, native):
        self._spec, self.native = spec, native

    def __getattr__(self, name):
        return getattr(self._spec, name)


def native(grid: str, grid_options=None, options=None):
    return SimpleNamespace(grid=grid, grid_options=grid_options or {}, options=options or {})


NATIVES = {  # contract A's values
    "euler": native("uniform"), "heun": native("uniform"), "ddim": native("uniform"),
    "dpm_solver_pp_2m": native("logsnr"), "edm_heun": native("edm", {"rho": 7.0}),
    "dopri5": native("endpoints"),
}


@pytest.fixture
def natives(monkeypatch):
    def install(**changed):
        for name, setting in {**NATIVES, **changed}.items():
            spec = SOLVERS[name]._spec if isinstance(SOLVERS[name], _WithNative) else SOLVERS[name]
            monkeypatch.setitem(SOLVERS, name, _WithNative(spec, setting))
    install()
    return install


@pytest.fixture(scope="module")
def oracle():
    return GaussianMixtureOracle(get_dataset("8gaussians").mixture,
                                 get_method("probability_flow").schedule())


@pytest.fixture(scope="module")
def test_points():
    return get_dataset("8gaussians").sample(200, 0, "test")


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("seeds, message", [
    ([5, 3], "held_out_seeds[0] = 5 is the selection seed"),
    ([1, 1], "held_out_seeds[1] = 1 is given twice"),
    ([-1], "held_out_seeds[0] must be >= 0"),
    ([1.5], "held_out_seeds[0] must be int"),
    (3, "held_out_seeds must be a list"),
])
def test_held_out_seeds_must_be_new_draws(seeds, message):
    with pytest.raises(SfbenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SweepConfig.from_dict({"solvers": ["euler"], "steps": [2], "seed": 5,
                               "held_out_seeds": seeds})


def test_native_must_be_a_boolean():
    with pytest.raises(SfbenchError, match="native must be bool"):
        SweepConfig.from_dict({"solvers": ["euler"], "steps": [2], "native": "yes"})


def test_flags_give_the_protocol_and_keep_the_one_source_rule():
    p = argparse.ArgumentParser()
    p.add_argument("--config")
    add_flags(p)
    args = p.parse_args(["--solvers", "euler", "--steps", "2", "--held-out-seeds", "7", "8",
                         "--native"])
    config = SweepConfig.from_dict(config_from_flags(args, nll=False))
    assert config.held_out_seeds == [7, 8] and config.native is True
    assert SweepConfig.from_dict(config_from_flags(p.parse_args(["--steps", "2"]), nll=False)
                                 ).native is False
    for flags in (["--native"], ["--held-out-seeds", "1"]):
        with pytest.raises(SfbenchError, match=flags[0]):
            check_one_source(p.parse_args(["--config", "s.yaml", *flags]))


# ---------------------------------------------------------------- native cells
def test_native_cells_are_added_where_the_common_grid_is_not_native(natives):
    config = SweepConfig.from_dict({
        "solvers": ["euler", "edm_heun", "dpm_solver_pp_2m"], "steps": [2, 8],
        "adaptive": {"dopri5": [1e-3]}, "native": True})
    cells = {c.key: c for c in config.cells()}
    assert list(cells) == [
        "euler/steps2", "euler/steps8",
        "edm_heun/steps2", "edm_heun/steps8", "edm_heun/edm/steps2", "edm_heun/edm/steps8",
        "dpm_solver_pp_2m/steps2", "dpm_solver_pp_2m/steps8",
        "dpm_solver_pp_2m/logsnr/steps2", "dpm_solver_pp_2m/logsnr/steps8",
        "dopri5/tol0.001",
    ]
    assert [k for k, c in cells.items() if c.native] == [
        "euler/steps2", "euler/steps8", "edm_heun/edm/steps2", "edm_heun/edm/steps8",
        "dpm_solver_pp_2m/logsnr/steps2", "dpm_solver_pp_2m/logsnr/steps8", "dopri5/tol0.001"]
    # rho = 7 is the edm grid's default: left out of the key and the call
    assert cells["edm_heun/edm/steps8"].generate_options() == {"grid": "edm"}
    # without native: the common cells only, none marked
    plain = SweepConfig.from_dict({**config.to_dict(), "native": False}).cells()
    assert len(plain) == 7 and not any(c.native for c in plain)


def test_a_common_cell_on_the_native_setting_is_marked_not_repeated(natives):
    cells = SweepConfig.from_dict({"solvers": ["edm_heun"], "steps": [4],
                                   "grids": ["uniform", "edm"], "native": True}).cells()
    assert [(c.key, c.native) for c in cells] == [("edm_heun/steps4", False),
                                                  ("edm_heun/edm/steps4", True)]


def test_native_grid_and_solver_options_name_the_cell(natives):
    natives(edm_heun=native("edm", {"rho": 5.0}), ddim=native("uniform"))
    cells = SweepConfig.from_dict({"solvers": ["edm_heun", "ddim"], "steps": [4],
                                   "options": {"ddim": {"eta": 0.5}}, "native": True}).cells()
    assert [(c.key, c.native) for c in cells] == [
        ("edm_heun/steps4", False), ("edm_heun/edm[rho=5]/steps4", True),
        ("ddim[eta=0.5]/steps4", False), ("ddim/steps4", True)]
    assert cells[1].generate_options() == {"grid": "edm", "grid_options": {"rho": 5.0}}
    assert cells[3].generate_options() == {"grid": "uniform"}


# ---------------------------------------------------------------- held-out seeds
def test_the_best_cells_figure_uses_only_the_held_out_draws(oracle, test_points):
    """A lucky selection draw picks a cell; its reported figure is its held-out draws'."""
    n, seed, held_out = 100, 3, [11, 12]
    lucky = generate(oracle, "euler", 1, n, seed).samples.numpy().astype(np.float32)
    scored = []

    def metrics(x):  # a genuine score, except on the one lucky selection draw
        scored.append(x)
        return {"w2": 0.0 if np.array_equal(x, lucky) else 1.0 + float(np.abs(x).mean())}

    config = SweepConfig.from_dict({"solvers": ["euler", "heun"], "steps": [1, 4],
                                    "n_samples": n, "seed": seed, "held_out_seeds": held_out})
    record, arrays = run_sweep(oracle, test_points, config, metrics=metrics)
    assert len(scored) == 4 * 3  # every cell: the selection seed and each held-out seed
    best = record.best
    assert best.key == "euler/steps1" and best.metrics["w2"] == 0.0  # chosen on selection
    expected = [1.0 + float(np.abs(generate(oracle, "euler", 1, n, s).samples.numpy()
                                   .astype(np.float32)).mean()) for s in held_out]
    assert best.held_out["w2"] == pytest.approx(expected, rel=1e-12)
    result = record.to_json()["result"]
    figure = result["best_held_out"]["w2"]
    assert figure["n"] == 2 and figure["mean"] == pytest.approx(np.mean(expected))
    assert figure["std"] == pytest.approx(np.std(expected, ddof=1))
    assert figure["mean"] > 1.0  # the lucky 0.0 is not in it
    # only the selection draws are stored, and no held-out draw is one of them
    assert set(arrays) == {npz_key(c.key) for c in record.cells}
    stored = [a for a in arrays.values()]
    held = [x for x in scored if not any(x is a or np.array_equal(x, a) for a in stored)]
    assert len(held) == 4 * 2
    assert record.settings["held_out_seeds"] == held_out and record.settings["native"] is False


def test_held_out_values_keep_their_seed_order_and_the_record_round_trips():
    row = CellResult(key="euler/steps2", solver="euler", solver_kind="ode", steps=2,
                     tolerance=None, grid="uniform", options={}, nfe=2, sample_seconds=0.1,
                     eval_seconds=0.2, n_finite=10, metrics={"w2": 0.5, "fid": None},
                     grid_options={}, native=True,
                     held_out={"w2": [0.4, math.nan, 0.6], "fid": [None, None, None]},
                     held_out_seconds=0.7)
    assert row.held_out_values("w2") == [0.4, 0.6] and row.held_out_mean("w2") == 0.5
    assert row.held_out_values("fid") == [] and row.held_out_mean("fid") is None
    assert row.held_out_mean("mmd") is None  # not measured
    record = SweepRecord(kind="vector", cells=[row], settings={
        "data_kind": "vector", "held_out_seeds": [1, 2, 3], "native": True})
    out = json.loads(json.dumps(record.to_json()))
    assert out["result"]["best_held_out"] == {"w2": {"mean": 0.5, "std": pytest.approx(0.1414,
                                                                                       rel=1e-3),
                                                     "n": 2}}
    again = SweepRecord.from_json(out)
    assert again.cells[0].native and again.cells[0].held_out["fid"] == [None] * 3
    assert json.loads(json.dumps(again.to_json())) == out
    _, settings, result = row.child_run({"seed": 0})
    assert settings["native"] is True and result["held_out_w2"] == 0.5
    assert "held_out_fid" not in result


def test_a_row_written_before_held_out_seeds_reads_back_empty():
    row = {"key": "euler/steps2", "solver": "euler", "solver_kind": "ode", "steps": 2,
           "tolerance": None, "grid": "uniform", "options": {}, "nfe": 2,
           "sample_seconds": 0.1, "eval_seconds": 0.2, "n_finite": 10, "w2": 0.5}
    cell = CellResult.from_json(row)
    assert cell.held_out == {} and cell.native is False and cell.grid_options == {}
    assert cell.metrics == {"w2": 0.5} and cell.held_out_mean("w2") is None


def test_native_cells_are_sampled_on_their_grid_and_recorded(natives, oracle, test_points):
    config = SweepConfig.from_dict({"solvers": ["edm_heun"], "steps": [4], "n_samples": 50,
                                    "native": True, "held_out_seeds": [1]})
    record, arrays = run_sweep(oracle, test_points, config, metrics=lambda x: {"w2": 1.0})
    common, nat = record.cells
    assert (common.native, nat.native) == (False, True)
    assert nat.grid == "edm" and nat.grid_options["rho"] == 7.0 and common.grid == "uniform"
    edm = generate(oracle, "edm_heun", 4, 50, 0, grid="edm").samples.numpy()
    np.testing.assert_array_equal(arrays[npz_key(nat.key)], edm.astype(np.float32))
    assert nat.held_out == {"w2": [1.0]}
