"""The solver registry: names, options and their validation."""

import inspect

import pytest

from sfbench.solvers import GRIDS, SOLVERS, get_grid, get_solver

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
