"""The CLI: a full by-hand run, and clear errors with a non-zero exit and nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sfbench.cli import main


def run_cli(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A data file and a briefly trained model shared by the tests."""
    d = tmp_path_factory.mktemp("cli")
    assert run_cli("data", "--dataset", "8gaussians", "--n-train", 2000, "--n-test", 300,
                   "--out", d / "data.npz", "--result", d / "data.json") == 0
    assert run_cli("train", "--method", "ddpm", "--dataset", "8gaussians", "--data",
                   d / "data.npz", "--steps", 30, "--out", d / "model.pt",
                   "--checkpoint-dir", d / "ckpt", "--result", d / "train.json") == 0
    return d


def test_by_hand_run_writes_records_with_settings(workdir):
    d = workdir
    assert run_cli("sample", "--model", d / "model.pt", "--solver", "heun", "--steps", 4,
                   "--n-samples", 200, "--seed", 3, "--out", d / "s.npz",
                   "--result", d / "s.json") == 0
    assert run_cli("evaluate", "--samples", d / "s.npz", "--data", d / "data.npz",
                   "--result", d / "m.json") == 0
    assert run_cli("evaluate", "--nll", "--model", d / "model.pt", "--data", d / "data.npz",
                   "--n-test", 20, "--result", d / "nll.json") == 0
    train_rec = json.loads((d / "train.json").read_text())
    assert train_rec["settings"]["method"] == "ddpm" and train_rec["settings"]["steps"] == 30
    assert "torch" in train_rec["environment"]
    sample_rec = json.loads((d / "s.json").read_text())
    assert sample_rec["settings"]["solver"] == "heun" and sample_rec["result"]["nfe"] == 8
    with np.load(d / "s.npz") as z:
        assert z["samples"].shape == (200, 2)
    metrics = json.loads((d / "m.json").read_text())["result"]
    assert all(np.isfinite(metrics[k]) for k in ("w2", "mmd", "fd"))
    assert np.isfinite(json.loads((d / "nll.json").read_text())["result"]["nll_nats"])


def test_oracle_samples_from_the_cli(tmp_path):
    assert run_cli("sample", "--oracle", "--method", "rectified_flow", "--dataset",
                   "8gaussians", "--solver", "dopri5", "--n-samples", 50,
                   "--out", tmp_path / "o.npz", "--result", tmp_path / "o.json") == 0
    rec = json.loads((tmp_path / "o.json").read_text())
    assert rec["settings"]["model"]["source"] == "oracle" and rec["result"]["nfe"] > 0


def expect_error(capsys, argv, *fragments, written=()):
    assert run_cli(*argv) == 1
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, err
    for path in written:
        assert not path.exists(), f"{path} was written by a failed command"


def test_unknown_method_lists_valid_names(tmp_path, capsys):
    expect_error(capsys, ["train", "--method", "vae", "--dataset", "moons", "--out",
                          tmp_path / "m.pt", "--result", tmp_path / "r.json"],
                 "unknown method 'vae'", "rectified_flow", "ddpm",
                 written=[tmp_path / "m.pt", tmp_path / "r.json"])


def test_unknown_dataset_lists_valid_names(tmp_path, capsys):
    expect_error(capsys, ["data", "--dataset", "mnist3d", "--out", tmp_path / "d.npz",
                          "--result", tmp_path / "r.json"],
                 "unknown dataset 'mnist3d'", "8gaussians", "moons",
                 written=[tmp_path / "d.npz", tmp_path / "r.json"])


def test_unknown_solver_lists_valid_names(workdir, tmp_path, capsys):
    expect_error(capsys, ["sample", "--model", workdir / "model.pt", "--solver", "leapfrog",
                          "--steps", 4, "--out", tmp_path / "s.npz", "--result",
                          tmp_path / "r.json"],
                 "leapfrog", "euler", "dopri5", written=[tmp_path / "s.npz"])


def test_missing_model_file_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere.pt"
    expect_error(capsys, ["sample", "--model", missing, "--solver", "euler", "--steps", 2,
                          "--out", tmp_path / "s.npz", "--result", tmp_path / "r.json"],
                 str(missing), written=[tmp_path / "s.npz", tmp_path / "r.json"])


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_model_file_is_named(workdir, tmp_path, capsys, damage):
    blob = (workdir / "model.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"not a model" * 10)
    expect_error(capsys, ["sample", "--model", bad, "--solver", "euler", "--steps", 2,
                          "--out", tmp_path / "s.npz", "--result", tmp_path / "r.json"],
                 str(bad), "corrupt", written=[tmp_path / "s.npz", tmp_path / "r.json"])


def test_sample_file_of_wrong_shape_is_refused(workdir, tmp_path, capsys):
    np.savez(tmp_path / "s3d.npz", samples=np.zeros((10, 3), dtype=np.float32))
    expect_error(capsys, ["evaluate", "--samples", tmp_path / "s3d.npz", "--data",
                          workdir / "data.npz", "--result", tmp_path / "r.json"],
                 "shape [10, 3]", "[N, 2]", written=[tmp_path / "r.json"])


def test_sample_file_with_nan_is_refused(workdir, tmp_path, capsys):
    x = np.zeros((10, 2), dtype=np.float32)
    x[4, 0] = np.nan
    np.savez(tmp_path / "nan.npz", samples=x)
    expect_error(capsys, ["evaluate", "--samples", tmp_path / "nan.npz", "--data",
                          workdir / "data.npz", "--result", tmp_path / "r.json"],
                 "NaN", written=[tmp_path / "r.json"])


def test_oracle_needs_a_mixture_dataset(tmp_path, capsys):
    expect_error(capsys, ["sample", "--oracle", "--method", "cfm", "--dataset", "moons",
                          "--solver", "euler", "--steps", 2, "--out", tmp_path / "s.npz",
                          "--result", tmp_path / "r.json"],
                 "Gaussian-mixture", written=[tmp_path / "s.npz"])


@pytest.mark.parametrize("steps", ["-1", "0"])
def test_non_positive_step_count_is_refused(workdir, tmp_path, capsys, steps):
    with pytest.raises(SystemExit) as exc:
        run_cli("sample", "--model", workdir / "model.pt", "--solver", "euler", "--steps",
                steps, "--out", tmp_path / "s.npz", "--result", tmp_path / "r.json")
    assert exc.value.code == 2
    assert "--steps" in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists()


def test_nan_loss_exits_non_zero_and_writes_no_model(tmp_path):
    np.savez(tmp_path / "huge.npz", train=np.full((100, 2), 1e30, dtype=np.float32),
             test=np.zeros((10, 2), dtype=np.float32))
    proc = subprocess.run(
        [sys.executable, "-m", "sfbench", "train", "--method", "cfm", "--dataset", "moons",
         "--data", tmp_path / "huge.npz", "--steps", "5", "--out", tmp_path / "m.pt",
         "--result", tmp_path / "r.json"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "loss is inf" in proc.stderr
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("command", ["train", "sample", "evaluate", "data"])
def test_every_command_has_help(command):
    proc = subprocess.run([sys.executable, "-m", "sfbench", command, "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "--result" in proc.stdout


def test_tracking_flags_are_global_and_the_environment_only_their_default(monkeypatch):
    from sfbench.cli import build_parser

    job = ["data", "--dataset", "moons", "--out", "d.npz", "--result", "d.json"]
    monkeypatch.delenv("SFBENCH_MLFLOW_EXPERIMENT", raising=False)
    monkeypatch.delenv("SFBENCH_CONFIG_HASH", raising=False)
    args = build_parser().parse_args(job)
    assert (args.mlflow_experiment, args.config_hash) == (None, None)
    args = build_parser().parse_args(["--mlflow-experiment", "e", "--config-hash", "abc", *job])
    assert (args.mlflow_experiment, args.config_hash) == ("e", "abc")
    # After the command (the older form), the experiment flag still counts and wins.
    args = build_parser().parse_args(["--mlflow-experiment", "e", *job, "--mlflow-experiment", "f"])
    assert args.mlflow_experiment == "f"
    monkeypatch.setenv("SFBENCH_MLFLOW_EXPERIMENT", "env-e")
    monkeypatch.setenv("SFBENCH_CONFIG_HASH", "env-h")
    args = build_parser().parse_args(job)
    assert (args.mlflow_experiment, args.config_hash) == ("env-e", "env-h")
    args = build_parser().parse_args(["--config-hash", "flag-h", *job])
    assert args.config_hash == "flag-h"
