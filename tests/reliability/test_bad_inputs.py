"""Promises 9, 10 and 11: invalid configurations, bad data files, unwritable outputs."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_preset, write_preset
from pipeline_helpers import new_machine_env, run_snakemake, snakemake_bin

from sfbench.cli import main
from sfbench.io import save_npz


def _train_argv(tmp_path, data) -> list[str]:
    return ["train", "--method", "rectified_flow", "--dataset", "8gaussians", "--data", str(data),
            "--steps", "5", "--batch-size", "16", "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--out", str(tmp_path / "out" / "seed0.pt"),
            "--result", str(tmp_path / "out" / "seed0.json")]


def _nothing_written(tmp_path) -> bool:
    return not (tmp_path / "ckpt").exists() and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 9. configurations

SCHEMA_FAULTS = {
    "train.bogus": ("train.bogus", 1),  # unknown key
    "data.n_train": ("data.n_train", "many"),  # wrong type
    "methods[1]": ("methods", ["rectified_flow", "no_such_method"]),
    "sampling.solvers[1]": ("sampling.solvers", ["euler", "eulr"]),
    "datasets[1]": ("datasets", ["8gaussians", "no_such_dataset"]),
    "sampling.steps[1]": ("sampling.steps", [2, -1]),  # negative steps
    "train.steps": ("train.steps", 0),  # zero steps
}


def _refused_before_any_job(workdir, cfg) -> str:
    proc = run_snakemake(workdir, "-n", "--configfile", write_preset(workdir, cfg), timeout=300)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "invalid configuration (no job was started)" in proc.stdout, proc.stdout[-3000:]
    for made in ("results", "resources", "logs", "mlflow.db"):
        assert not (workdir / made).exists(), made
    return proc.stdout


def test_every_invalid_field_is_named_at_parse_time(workdir):
    """9. Unknown key, wrong type, unknown method / solver / dataset, negative and zero
    steps: all refused at parse time in one message, each with its field, no job run."""
    cfg = tiny_preset()
    for dotted, value in SCHEMA_FAULTS.values():
        *parents, leaf = dotted.split(".")
        target = cfg
        for part in parents:
            target = target[part]
        target[leaf] = value
    out = _refused_before_any_job(workdir, cfg)
    for field in SCHEMA_FAULTS:
        assert f"{field}:" in out, f"{field} not named in:\n{out[-3000:]}"
    assert "'no_such_method' is not a valid name" in out
    assert "'eulr' is not a valid name" in out
    assert "'no_such_dataset' is not a valid name" in out


def test_an_empty_sweep_is_refused_at_parse_time(workdir):
    """9. A sweep with no solver at all is refused, naming `sampling`, before any job."""
    cfg = tiny_preset(**{"sampling.solvers": [], "sampling.adaptive": {}})
    out = _refused_before_any_job(workdir, cfg)
    assert "sampling" in out and "no solver to run" in out


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "-3"], ["--batch-size", "0"]])
def test_cli_refuses_non_positive_counts(argv, tmp_path, capsys):
    """9. The CLI refuses zero or negative step counts and sizes, naming the flag."""
    full = _train_argv(tmp_path, tmp_path / "d.npz")
    flag = argv[0]
    i = full.index(flag)
    full[i + 1] = argv[1]
    with pytest.raises(SystemExit) as exit_info:
        main(full)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err
    assert _nothing_written(tmp_path)


# ---------------------------------------------------------------- 10. data files

def test_missing_data_file_stops_before_training(tmp_path, capsys):
    """10. A missing dataset file: exit 1, the error names it, nothing trained or written."""
    missing = tmp_path / "nowhere" / "8gaussians.npz"
    assert main(_train_argv(tmp_path, missing)) == 1
    assert f"file not found: {missing}" in capsys.readouterr().err
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize(
    "train_split, problem",
    [
        (np.zeros((100, 3), np.float32), "has shape [100, 3], expected [N, 2]"),
        (np.zeros((100,), np.float32), "has shape [100]"),
        (np.zeros((0, 2), np.float32), "is empty"),
        (np.where(np.arange(200).reshape(100, 2) == 7, np.nan, 1.0).astype(np.float32),
         "holds 1 rows with NaN or Inf"),
        (np.full((100, 2), np.inf, np.float32), "holds 100 rows with NaN or Inf"),
    ],
    ids=["wrong-dim", "flat", "empty", "nan", "inf"],
)
def test_malformed_data_stops_before_training(train_split, problem, tmp_path, capsys):
    """10. Data of the wrong shape, empty, or holding NaN / Inf: a clear error naming the
    file before any training step; no checkpoint, model or result."""
    path = save_npz(tmp_path / "8gaussians.npz", train=train_split,
                    test=np.zeros((10, 2), np.float32))
    assert main(_train_argv(tmp_path, path)) == 1
    err = capsys.readouterr().err
    assert f"{path}:train {problem}" in err, err
    assert _nothing_written(tmp_path)


# ---------------------------------------------------------------- 11. unwritable outputs

def _data_job(out_dir) -> list[str]:
    return [sys.executable, "-m", "sfbench", "data", "--dataset", "8gaussians", "--n-train",
            "5000", "--n-test", "100", "--out", f"{out_dir}/d.npz", "--result", f"{out_dir}/d.json"]


def _limit_file_size(limit: int):
    """preexec_fn: writes past ``limit`` bytes fail with EFBIG, as on a full disk."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_disk_full_fails_loudly_and_leaves_nothing(tmp_path):
    """11. A job whose output does not fit on the disk exits non-zero, names the output,
    and leaves neither the output nor a temporary file (a 16 kB file-size limit stands
    in for the full disk)."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(_data_job(out), capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size(16_000))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"cannot write {out}/d.npz" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []


def test_output_under_a_file_fails_loudly(tmp_path, capsys):
    """11. An output directory that cannot be created: exit 1, the output named, nothing written."""
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results directory should be")
    argv = ["data", "--dataset", "8gaussians", "--n-train", "50", "--n-test", "10",
            "--out", str(blocker / "d.npz"), "--result", str(blocker / "d.json")]
    assert main(argv) == 1
    assert f"cannot write {blocker}/d.npz" in capsys.readouterr().err
    assert blocker.read_text().startswith("a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_results_directory_fails_loudly(tmp_path, capsys):
    """11. A read-only results directory: exit 1, the output named, nothing written."""
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        argv = ["data", "--dataset", "8gaussians", "--n-train", "50", "--n-test", "10",
                "--out", str(out / "d.npz"), "--result", str(out / "d.json")]
        assert main(argv) == 1
        assert f"cannot write {out}/d.npz" in capsys.readouterr().err
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


@pytest.mark.slow
def test_pipeline_job_that_cannot_write_leaves_no_complete_output(workdir):
    """11. Under Snakemake, a job that cannot write its outputs fails the run, and none of
    its outputs is left or counted as done: the next dry run plans the job again."""
    # 4 MB of training data against a 3 MB limit: the limit stops the data file,
    # not the tracking database (about 1 MB) or Snakemake's own small files.
    cfg = write_preset(workdir, tiny_preset(**{"data.n_train": 500_000}))
    target = "resources/data/8gaussians.npz"
    proc = subprocess.run(
        [snakemake_bin(), target, "--cores", "1", "--configfile", cfg],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        env=new_machine_env({"MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}),
        preexec_fn=_limit_file_size(3_000_000),
    )
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "Error in rule data" in proc.stdout, proc.stdout[-3000:]
    log = (workdir / "logs" / "data" / "8gaussians.log").read_text()
    assert f"cannot write {target}" in log, log[-2000:]
    assert not (workdir / target).exists()
    assert not (workdir / "results" / "data" / "8gaussians.json").exists()
    leftovers = list((workdir / "resources" / "data").glob("*"))
    assert leftovers == [], leftovers
    dry = run_snakemake(workdir, target, "-n", "--configfile", cfg)
    assert "data" in dry.stdout and "Nothing to be done" not in dry.stdout, dry.stdout[-2000:]
