"""A plain PyTorch network declared by a spec file: sfbench's rk4 against a hand-written RK4
over the same callable, the reversed time convention, call order and weights files."""

from __future__ import annotations

import pytest
import torch
from external_helpers import NETWORK, write_spec

from sfbench.errors import ExternalModelError
from sfbench.external import load_any_model
from sfbench.sampling import generate


@pytest.fixture
def netmod(tmp_path, monkeypatch):
    """The test's network module on sys.path, and a state_dict of it in two formats."""
    name = f"sfbench_test_net_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(NETWORK)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    state = {f"body.{k}": v for k, v in body.state_dict().items()}
    torch.save(state, tmp_path / "w.pt")
    try:  # safetensors comes with the diffusers extra
        from safetensors.torch import save_file
    except ImportError:
        return name
    save_file(state, str(tmp_path / "w.safetensors"))
    return name


def hand_rk4(f, x, steps):
    """Classical RK4 of dx/dt = f(x, t) from t = 0 to 1 (sfbench time)."""
    h = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * h)
        k1 = f(x, t)
        k2 = f(x + h / 2 * k1, t + h / 2)
        k3 = f(x + h / 2 * k2, t + h / 2)
        k4 = f(x + h * k3, t + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def test_rk4_equals_a_hand_written_loop_over_the_callable(tmp_path, netmod):
    spec = write_spec(tmp_path, "cfm", network=f"{netmod}:make", weights="w.pt",
                      kwargs="{hidden: 16}", dataset="8gaussians", name="my_cfm")
    model, info = load_any_model(spec)
    res = generate(model, "rk4", 8, 32, seed=4)
    net = model.net
    with torch.no_grad():
        expected = hand_rk4(net, res.initial.clone(), 8)
    torch.testing.assert_close(res.samples, expected, rtol=1e-6, atol=1e-6)
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert torch.equal(net.body[0].weight, state["body.0.weight"])  # the file's weights
    assert info == {"source": "torch", "path": str(spec), "method": "my_cfm",
                    "dataset": "8gaussians", "prediction": "velocity",
                    "schedule": {"name": "rectified_flow", "t_start": 0.0, "t_end": 1.0},
                    "external": True, "network": f"{netmod}:make", "time": "data_at_1"}


def test_noise_at_1_declaration_of_the_reversed_network_gives_the_same_samples(tmp_path, netmod):
    pytest.importorskip("safetensors")
    forward = write_spec(tmp_path, "fwd", network=f"{netmod}:make", weights="w.safetensors")
    reverse = write_spec(tmp_path, "rev", network=f"{netmod}:make", weights="w.safetensors",
                         kwargs="{reverse_time: true, t_first: true}", time="noise_at_1",
                         inputs="[t, x]")
    a = generate(load_any_model(forward)[0], "rk4", 6, 20, seed=1).samples
    b = generate(load_any_model(reverse)[0], "rk4", 6, 20, seed=1).samples
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    # Declared in the wrong convention, the same network samples something else.
    wrong = write_spec(tmp_path, "wrong", network=f"{netmod}:make", weights="w.safetensors",
                       kwargs="{reverse_time: true}")
    c = generate(load_any_model(wrong)[0], "rk4", 6, 20, seed=1).samples
    assert not torch.allclose(a, c, atol=1e-2)


def test_a_network_file_next_to_the_spec(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "net.py").write_text(NETWORK)
    spec = write_spec(tmp_path / "sub", "m", network="net.py:make", name="by_file")
    model, info = load_any_model(spec)
    assert info["method"] == "by_file" and info["network"].endswith("sub/net.py:make")
    assert generate(model, "euler", 2, 3, seed=0).samples.shape == (3, 2)


@pytest.mark.parametrize("network, message", [
    ("no_such_module_xyz:make", "does not import"),
    ("{mod}:missing", "has no 'missing'"),
    ("{mod}:NOT_CALLABLE", "is not callable"),
    ("{mod}:not_a_module", "returned a str, not a torch.nn.Module"),
])
def test_bad_callables_are_named(tmp_path, netmod, network, message):
    spec = write_spec(tmp_path, "bad", network=network.format(mod=netmod))
    with pytest.raises(ExternalModelError, match=message):
        load_any_model(spec)


def test_pickled_objects_in_weights_are_refused(tmp_path, netmod):
    torch.save({"body.0.weight": torch.zeros(16, 3), "obj": ValueError("code")},
               tmp_path / "evil.pt")
    spec = write_spec(tmp_path, "evil", network=f"{netmod}:make", weights="evil.pt")
    with pytest.raises(ExternalModelError, match="cannot read weights"):
        load_any_model(spec)


def test_a_json_spec_reads_like_the_yaml_one(tmp_path, netmod):
    import json

    fields = {"kind": "torch", "network": f"{netmod}:make", "schedule": {"name": "cfm_ot",
              "sigma_min": 0.01}, "prediction": "velocity", "time": "data_at_1",
              "sample_shape": [2], "weights": "w.pt"}
    (tmp_path / "m.json").write_text(json.dumps(fields))
    model, info = load_any_model(tmp_path / "m.json")
    assert info["method"] == "m" and model.schedule.sigma_min == 0.01


@pytest.mark.parametrize("text, message", [
    ("kind: onnx\n", "`kind` must be one of torch, diffusers"),
    ("kind: torch\nnetwork: a:b\n", "kind torch needs schedule, prediction, time, sample_shape"),
    ("[1, 2]\n", "must be a mapping"),
    ("kind: torch\nnetwork: a:b\nschedule: vpx\nprediction: eps\ntime: data_at_1\n"
     "sample_shape: [2]\n", "`schedule` must name one of"),
    ("kind: torch\nnetwork: a:b\nschedule: vp\nprediction: eps\ntime: backwards\n"
     "sample_shape: [2]\n", "unknown time convention 'backwards'"),
    ("kind: torch\nnetwork: a:b\nschedule: vp\nprediction: eps\ntime: data_at_1\n"
     "sample_shape: [0]\n", "`sample_shape` must be a list of positive integers"),
    ("kind: torch\nnetwork: a:b\nschedule: {name: vp, beta_max: -1}\nprediction: eps\n"
     "time: data_at_1\nsample_shape: [2]\n", "schedule vp with settings"),
    ("kind: diffusers\npath: ./nowhere\n", "nowhere is not a diffusers model directory"),
])
def test_malformed_specs_are_refused_by_name(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ExternalModelError, match="bad.yaml") as err:
        load_any_model(tmp_path / "bad.yaml")
    assert message in str(err.value)
