"""The solver registry: names, options and their validation."""

import dataclasses
import inspect

import pytest
import torch

from sfbench.data import get_dataset
from sfbench.eval.oracle import GaussianMixtureOracle
from sfbench.methods import METHODS
from sfbench.sampling import generate
from sfbench.solvers import (
    GRIDS,
    SOLVERS,
    VARIABLES,
    NativeSetting,
    get_grid,
    get_solver,
    solver_table,
)

EXPECTED = {
    "euler", "heun", "midpoint", "rk4", "dopri5", "euler_maruyama", "ddim", "ddpm_ancestral",
    "pc", "dpm_solver_pp_2m", "edm_heun",
}


def test_registered_solvers():
    assert set(SOLVERS) == EXPECTED
    for name, spec in SOLVERS.items():
        assert spec.name == name and spec.kind in ("ode", "sde") and spec.description
    assert [n for n, s in SOLVERS.items() if s.adaptive] == ["dopri5"]
    stochastic = {n for n, s in SOLVERS.items() if s.kind == "sde"}
    assert stochastic == {"euler_maruyama", "ddpm_ancestral", "pc"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_defaults_match_the_function_signature(name):
    spec = SOLVERS[name]
    params = inspect.signature(spec.fn).parameters
    assert list(params)[:4] == ["model", "x", "grid", "noise"]
    options = {
        p.name: p.default for p in params.values()
        if p.kind is p.KEYWORD_ONLY and p.name != "callback"
    }
    assert options == dict(spec.defaults)
    assert params["callback"].default is None


def test_unknown_solver_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown solver 'rk45'") as err:
        get_solver("rk45")
    for name in EXPECTED:
        assert name in str(err.value)


def test_options_resolve_to_defaults_and_reject_unknown_ones():
    assert get_solver("ddim").resolve_options({}) == {"eta": 0.0}
    assert get_solver("ddim").resolve_options({"eta": 0.5}) == {"eta": 0.5}
    assert get_solver("dopri5").resolve_options({"rtol": 1e-3}) == {"rtol": 1e-3, "atol": 1e-5}
    with pytest.raises(ValueError, match=r"'rtl'.*valid options: atol, rtol"):
        get_solver("dopri5").resolve_options({"rtl": 1e-3})
    with pytest.raises(ValueError, match=r"'eta'.*valid options: none"):
        get_solver("euler").resolve_options({"eta": 1.0})


def test_defaults_are_read_only():
    with pytest.raises(TypeError):
        get_solver("ddim").defaults["eta"] = 1.0
    with pytest.raises(TypeError):
        get_grid("edm").defaults["rho"] = 3.0


def test_every_solver_has_a_docstring_with_its_formula_source():
    # The registry entry is what users see; the function's docstring carries the maths.
    for name, spec in SOLVERS.items():
        module_doc = inspect.getmodule(spec.fn).__doc__ or ""
        assert spec.fn.__doc__ and len(spec.fn.__doc__) > 80, name
        assert ":math:" in spec.fn.__doc__ + module_doc, name


def test_new_solver_options_resolve():
    assert get_solver("pc").resolve_options({}) == {
        "predictor": "euler_maruyama", "snr": 0.16, "corrector_steps": 1,
    }
    assert get_solver("edm_heun").resolve_options({"s_churn": 40}) == {
        "s_churn": 40, "s_tmin": 0.0, "s_tmax": None, "s_noise": 1.0,
    }
    with pytest.raises(ValueError, match=r"'churn'.*valid options: s_churn, s_noise, s_tmax"):
        get_solver("edm_heun").resolve_options({"churn": 1.0})
    with pytest.raises(ValueError, match=r"'snr_'.*corrector_steps, predictor, snr"):
        get_solver("pc").resolve_options({"snr_": 0.1})


def test_grid_registry():
    assert set(GRIDS) == {"uniform", "edm", "logsnr"}
    for name, spec in GRIDS.items():
        assert spec.name == name and spec.description
        params = inspect.signature(spec.fn).parameters
        assert list(params)[:2] == ["steps", "schedule"]
        assert {p: params[p].default for p in list(params)[2:]} == dict(spec.defaults)
    with pytest.raises(ValueError, match="unknown grid 'karras'.*edm, logsnr, uniform"):
        get_grid("karras")
    with pytest.raises(ValueError, match=r"'rh'.*grid 'edm'.*valid options: rho, sigma_max"):
        get_grid("edm").resolve_options({"rh": 7})


# --- what each solver is: its variable, order, cost and native setting (issue 15) -------

# The values of the contract, written out here so that a changed entry must change this too:
# (variable, order, NFE per step, native setting in words).
METADATA = {
    "euler": ("t", 1, "1", "uniform grid"),
    "heun": ("t", 2, "2", "uniform grid"),
    "midpoint": ("t", 2, "2", "uniform grid"),
    "rk4": ("t", 4, "4", "uniform grid"),
    "dopri5": ("t", 5, "adaptive", "endpoints"),
    "euler_maruyama": ("t", 1, "1", "uniform grid"),  # weak order
    "pc": ("t", 1, "1 + corrector_steps", "uniform grid"),  # weak order
    "ddim": ("sigma/alpha", 1, "1", "uniform grid"),
    "ddpm_ancestral": ("sigma/alpha", 1, "1", "uniform grid"),  # weak order
    "dpm_solver_pp_2m": ("log-SNR", 2, "1", "logsnr grid"),
    "edm_heun": ("sigma/alpha", 2, "2 (1 on a last step onto sigma = 0)", "edm grid, rho = 7"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_solver_declares_what_it_is(name):
    spec = SOLVERS[name]
    assert spec.variable in VARIABLES
    assert isinstance(spec.native, NativeSetting)
    assert (spec.variable, spec.order, spec.nfe_per_step, spec.native.describe()) == METADATA[name]


def test_native_settings():
    assert SOLVERS["dpm_solver_pp_2m"].native == NativeSetting("logsnr")
    assert SOLVERS["edm_heun"].native == NativeSetting("edm", {"rho": 7.0})
    assert SOLVERS["dopri5"].native.grid == "endpoints"
    # dpm's native options are empty: lower_order_final stays automatic (None)
    assert dict(SOLVERS["dpm_solver_pp_2m"].native.options) == {}


def test_native_setting_is_frozen_and_read_only():
    native = SOLVERS["edm_heun"].native
    with pytest.raises(TypeError):
        native.grid_options["rho"] = 3.0
    with pytest.raises(TypeError):
        native.options["s_churn"] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        native.grid = "uniform"
    source = {"rho": 5}
    copy = NativeSetting("edm", source)
    source["rho"] = 9  # the setting keeps its own copy
    assert copy.grid_options["rho"] == 5


def test_native_setting_describe():
    assert NativeSetting().describe() == "uniform grid"
    assert NativeSetting("edm", {"rho": 7.0}).describe() == "edm grid, rho = 7"
    assert NativeSetting("edm", {"rho": 5, "sigma_max": 80.0}).describe() == (
        "edm grid, rho = 5, sigma_max = 80")
    assert NativeSetting("uniform", {}, {"eta": 0.5}).describe() == "uniform grid; eta = 0.5"
    assert NativeSetting("endpoints").describe() == "endpoints"


def test_an_unknown_variable_is_refused():
    with pytest.raises(ValueError, match=r"variable must be one of t, sigma/alpha, log-SNR.*'s'"):
        dataclasses.replace(SOLVERS["euler"], variable="s")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_native_setting_resolves_and_samples(name):
    spec = SOLVERS[name]
    native = spec.native
    options = spec.resolve_options(native.options)  # unknown options would raise
    assert spec.adaptive == (native.grid == "endpoints")
    grid = "uniform" if spec.adaptive else native.grid
    get_grid(grid).resolve_options(native.grid_options)
    for method in ("ddpm", "rectified_flow"):
        schedule = METHODS[method].schedule()
        oracle = GaussianMixtureOracle(get_dataset("8gaussians").mixture, schedule)
        steps = None if spec.adaptive else 6
        result = generate(oracle, name, steps, 64, seed=0, grid=grid,
                          grid_options=native.grid_options, dtype=torch.float64, **native.options)
        assert torch.isfinite(result.samples).all(), (name, method)
        assert result.settings["grid"] == native.grid and result.settings["options"] == options
        for key, value in native.grid_options.items():
            assert result.settings["grid_options"][key] == value


def test_solver_table():
    rows = solver_table()
    assert [r["solver"] for r in rows] == list(SOLVERS)
    for row in rows:
        spec = SOLVERS[row["solver"]]
        assert set(row) == {"solver", "kind", "variable", "order", "nfe_per_step", "native",
                            "description"}
        assert (row["variable"], row["order"], row["nfe_per_step"], row["native"]) == (
            METADATA[spec.name])
        assert (row["kind"], row["description"]) == (spec.kind, spec.description)
