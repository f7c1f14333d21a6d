"""`--model` of sweep, sample and evaluate --nll takes a diffusers directory or a model spec;
every bad external model exits with status 1, a message naming the problem, and no output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from external_helpers import DDIM, NETWORK, write_spec, write_unet

from sfbench.cli import main


def run_cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture
def data(tmp_path):
    assert run_cli("data", "--dataset", "8gaussians", "--n-train", 50, "--n-test", 60,
                   "--out", tmp_path / "d.npz", "--result", tmp_path / "d.json") == 0
    return tmp_path / "d.npz"


@pytest.fixture
def net_file(tmp_path):
    (tmp_path / "net.py").write_text(NETWORK + BAD_NETWORKS)
    return "net.py"


BAD_NETWORKS = '''

def wrong_shape():
    net = Velocity()
    net.body[-1] = nn.Linear(16, 4)  # [B, 4] out, never a velocity of [B, 2]
    return net
'''


def sweep(model, data, out_dir, *extra):
    return ("sweep", "--model", model, "--data", data, "--solvers", "euler", "rk4",
            "--steps", 2, "--n-samples", 30, "--out", out_dir / "s.npz",
            "--result", out_dir / "s.json", *extra)


def test_sweep_sample_and_nll_of_a_spec(tmp_path, data, net_file):
    spec = write_spec(tmp_path, "cfm", network=f"{net_file}:make", dataset="8gaussians")
    assert run_cli(*sweep(spec, data, tmp_path, "--nll-result", tmp_path / "n.json",
                          "--nll-points", 5, "--plot", tmp_path / "s.png")) == 0
    record = json.loads((tmp_path / "s.json").read_text())
    model = record["settings"]["model"]
    assert model["external"] is True and model["source"] == "torch"
    assert record["settings"]["method"] == "cfm" and record["settings"]["dataset"] == "8gaussians"
    assert len(record["result"]["cells"]) == 2
    assert all(np.isfinite(c["w2"]) for c in record["result"]["cells"])
    nll = json.loads((tmp_path / "n.json").read_text())
    assert np.isfinite(nll["result"]["nll_nats"]) and nll["settings"]["model"]["external"]

    assert run_cli("sample", "--model", spec, "--solver", "heun", "--steps", 3, "--n-samples",
                   10, "--out", tmp_path / "x.npz", "--result", tmp_path / "x.json") == 0
    assert json.loads((tmp_path / "x.json").read_text())["result"]["nfe"] == 6
    assert run_cli("evaluate", "--nll", "--model", spec, "--data", data, "--n-test", 4,
                   "--result", tmp_path / "e.json") == 0


def test_sweep_of_a_diffusers_directory(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    d = write_unet(tmp_path / "unet", diffusers.DDIMScheduler, **DDIM)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d64.npz", test=rng.standard_normal((40, 64)).astype(np.float32))
    assert run_cli("sweep", "--model", d, "--data", tmp_path / "d64.npz", "--solvers", "ddim",
                   "dpm_solver_pp_2m", "--steps", 4, "--n-samples", 20,
                   "--out", tmp_path / "s.npz", "--result", tmp_path / "s.json") == 0
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["settings"]["model"]["external"] is True
    assert record["settings"]["model"]["source"] == "diffusers"
    with np.load(tmp_path / "s.npz") as z:
        assert all(z[k].shape == (20, 64) for k in z.files)


def test_a_spec_naming_a_diffusers_directory(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    write_unet(tmp_path / "models" / "unet", diffusers.DDIMScheduler, **DDIM)
    spec = tmp_path / "models" / "digits_unet.yaml"
    spec.write_text("kind: diffusers\npath: ./unet\ndataset: digits\nname: hub_unet\n")
    from sfbench.external import load_any_model

    model, info = load_any_model(spec)
    assert info["method"] == "hub_unet" and info["dataset"] == "digits"
    assert info["model_path"] == str(tmp_path / "models" / "unet")
    assert model.sample_shape == (1, 8, 8)


def _bad_scheduler(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    d = write_unet(tmp_path / "u", diffusers.DDIMScheduler, **DDIM)
    config = json.loads((d / "scheduler_config.json").read_text())
    (d / "scheduler_config.json").write_text(json.dumps({**config, "prediction_type": "mu"}))
    return d


def _not_diffusers(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "weights.pt").write_bytes(b"")
    return tmp_path / "empty"


BAD = {
    "not a diffusers directory": (_not_diffusers, "is not a diffusers model directory"),
    "unknown prediction type": (_bad_scheduler, "unknown prediction type 'mu'"),
    "does not import": (lambda p: write_spec(p, "m", network="no_such_module_xyz:make"),
                        "'no_such_module_xyz' does not import"),
    "not callable": (lambda p: write_spec(p, "m", network="net.py:NOT_CALLABLE"),
                     "is not callable"),
    "not a module": (lambda p: write_spec(p, "m", network="net.py:not_a_module"),
                     "not a torch.nn.Module"),
    "wrong output shape": (lambda p: write_spec(p, "m", network="net.py:wrong_shape"),
                           "output has shape [2, 4]; expected [2, 2]"),
    "dataset shape": (lambda p: write_spec(p, "m", network="net.py:make", dataset="digits"),
                      "dataset 'digits' has samples of shape [1, 8, 8]"),
    "unknown torch prediction": (lambda p: write_spec(p, "m", network="net.py:make",
                                                      prediction="flow"),
                                 "unknown prediction 'flow'"),
    "unknown key": (lambda p: write_spec(p, "m", network="net.py:make", weight="w.pt"),
                    "unknown key(s) weight"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_external_models_exit_1_naming_the_problem(case, tmp_path, data, net_file, capsys):
    make, message = BAD[case]
    model = make(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert run_cli(*sweep(model, data, out)) == 1
    err = capsys.readouterr().err
    assert message in err, err
    assert str(model) in err, err
    assert not (out / "s.npz").exists() and not (out / "s.json").exists()


def test_decompose_an_external_model_with_the_dataset_flag(tmp_path, data, net_file):
    """A spec that names no dataset takes --dataset; its oracle is the spec's path's."""
    spec = write_spec(tmp_path, "cfm", network=f"{net_file}:make")
    assert run_cli("decompose", "--model", spec, "--dataset", "8gaussians", "--data", data,
                   "--solvers", "euler", "--steps", 2, "--n-samples", 40, "--floor-draws", 2,
                   "--exact-tolerance", 1e-3, "--straightness-steps", 4,
                   "--result", tmp_path / "dec.json") == 0
    record = json.loads((tmp_path / "dec.json").read_text())
    settings = record["settings"]
    assert settings["model"]["external"] and settings["dataset"] == "8gaussians"
    assert record["settings"]["oracle_note"] == "oracle of the same path"
    assert np.isfinite(record["result"]["cells"][0]["total_w2"])


def test_the_pipeline_s_name_and_dataset_override_the_spec_s(tmp_path, data, net_file):
    """A preset names its external models: `--name` wins over the spec's name, and the
    records give the one model seed 0, as a trained model of one seed."""
    spec = write_spec(tmp_path, "cfm", network=f"{net_file}:make")
    assert run_cli(*sweep(spec, data, tmp_path, "--name", "their_cfm",
                          "--dataset", "8gaussians")) == 0
    settings = json.loads((tmp_path / "s.json").read_text())["settings"]
    assert (settings["method"], settings["dataset"], settings["seed"]) == (
        "their_cfm", "8gaussians", 0)
    assert run_cli("evaluate", "--nll", "--model", spec, "--data", data, "--n-test", 4,
                   "--name", "their_cfm", "--result", tmp_path / "e.json") == 0
    assert json.loads((tmp_path / "e.json").read_text())["settings"]["method"] == "their_cfm"
