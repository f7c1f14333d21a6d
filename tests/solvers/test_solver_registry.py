"""The solver registry: names, options and their validation."""

import inspect

import pytest

from sfbench.solvers import SOLVERS, get_solver

EXPECTED = {"euler", "heun", "rk4", "dopri5", "euler_maruyama", "ddim", "ddpm_ancestral"}


def test_registered_solvers():
    assert set(SOLVERS) == EXPECTED
    for name, spec in SOLVERS.items():
        assert spec.name == name and spec.kind in ("ode", "sde") and spec.description
    assert [n for n, s in SOLVERS.items() if s.adaptive] == ["dopri5"]
    stochastic = {n for n, s in SOLVERS.items() if s.kind == "sde"}
    assert stochastic == {"euler_maruyama", "ddpm_ancestral"}


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
