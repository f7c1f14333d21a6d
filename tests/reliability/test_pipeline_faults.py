"""Promises 1, 4 and 6: jobs and the Snakemake driver killed mid-run, a NaN loss."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess

import psutil
import pytest
import torch
from conftest import job_processes, tiny_preset, wait_for, write_preset
from pipeline_helpers import new_machine_env, run_snakemake, snakemake_bin

from sfbench.checkpoint import CHECKPOINT_NAME, load_file, load_model

pytestmark = pytest.mark.slow

MODEL = "results/models/8gaussians/rectified_flow/seed0.pt"
RESULT = "results/train/8gaussians/rectified_flow/seed0.json"
CHECKPOINT = "checkpoints/8gaussians/rectified_flow/seed0/" + CHECKPOINT_NAME
# Long enough to be caught mid-run after its first checkpoints.
SLOW_TRAINING = {"train.steps": 1500, "train.checkpoint_every": 50, "train.batch_size": 128}


def _start(workdir, env, *args) -> subprocess.Popen:
    full = new_machine_env(env)
    return subprocess.Popen([snakemake_bin(), *args], cwd=workdir, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _checkpoint_step(workdir) -> int | None:
    try:
        return load_file(workdir / CHECKPOINT, "checkpoint")["step"]
    except Exception:  # not written yet (or being replaced right now)
        return None


def test_killed_training_resumes_to_the_uninterrupted_weights(workdir, pipeline_env):
    """1. `kill -9` of the training job mid-run; the rerun of the pipeline resumes from
    the last checkpoint and ends with the weights and loss history of an uninterrupted
    run with the same seed (bit-identical on CPU)."""
    cfg = write_preset(workdir, tiny_preset(**SLOW_TRAINING))
    driver = _start(workdir, pipeline_env, RESULT, "--cores", "1", "--configfile", cfg)
    wait_for(lambda: (_checkpoint_step(workdir) or 0) >= 100, 300, "two checkpoints", driver)
    (job,) = job_processes(driver.pid, "train")
    job.send_signal(signal.SIGKILL)
    out = driver.communicate(timeout=120)[0]
    assert driver.returncode != 0, out[-3000:]
    killed_at = _checkpoint_step(workdir)
    assert killed_at < 1500, "training finished before it was killed; the test proved nothing"
    assert not (workdir / MODEL).exists()

    rerun = run_snakemake(workdir, RESULT, "--cores", "1", "--configfile", cfg, env=pipeline_env)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    resumed = json.loads((workdir / RESULT).read_text())["result"]
    assert resumed["resumed_from_step"] == killed_at
    resumed_weights = load_model(workdir / MODEL).net.state_dict()

    fresh = run_snakemake(workdir, RESULT, "--cores", "1", "--configfile", cfg,
                          "--forcerun", "train", env=pipeline_env)
    assert fresh.returncode == 0, fresh.stdout[-3000:]
    reference = json.loads((workdir / RESULT).read_text())["result"]
    assert reference["resumed_from_step"] == 0
    assert resumed["loss_history"] == reference["loss_history"]
    for name, tensor in load_model(workdir / MODEL).net.state_dict().items():
        assert torch.equal(resumed_weights[name], tensor), name


def test_killed_driver_leaves_incomplete_outputs_that_are_never_used(workdir, pipeline_env):
    """4. The Snakemake driver is killed (SIGKILL) while training; half-written outputs
    are left behind. A plain rerun without the profile refuses with Snakemake's
    incomplete-files message; `--rerun-incomplete` reruns the job and no partial
    output survives."""
    cfg = write_preset(workdir, tiny_preset(**SLOW_TRAINING))
    driver = _start(workdir, pipeline_env, RESULT, "--cores", "1", "--configfile", cfg)
    wait_for(lambda: job_processes(driver.pid, "train"), 300, "the training job", driver)
    jobs = job_processes(driver.pid, "train")
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=60)
    for job in jobs:  # an orphaned job would otherwise finish the outputs itself
        with contextlib.suppress(psutil.NoSuchProcess):
            job.send_signal(signal.SIGKILL)
            job.wait(timeout=60)
    # What a job writing without atomic renames would leave: both outputs, half done.
    for path in (MODEL, RESULT):
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_bytes(b"PK\x03\x04 half a file")

    # The killed driver also left its lock: the documented first step removes it.
    unlock = run_snakemake(workdir, "--unlock", "--configfile", cfg, env=pipeline_env)
    assert unlock.returncode == 0, unlock.stdout[-3000:]
    plain = run_snakemake(workdir, RESULT, "--cores", "1", "--configfile", cfg,
                          "--workflow-profile", "none", env=pipeline_env)
    assert plain.returncode != 0
    assert "IncompleteFilesException" in plain.stdout, plain.stdout[-3000:]
    assert "--rerun-incomplete" in plain.stdout and MODEL in plain.stdout

    recovered = run_snakemake(workdir, RESULT, "--cores", "1", "--configfile", cfg,
                              "--workflow-profile", "none", "--rerun-incomplete",
                              env=pipeline_env)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    load_model(workdir / MODEL)  # complete and sealed
    assert json.loads((workdir / RESULT).read_text())["result"]["final_loss"] > 0


def test_nan_loss_fails_the_job_its_run_and_keeps_it_out_of_the_report(workdir, pipeline_env):
    """6. A NaN loss (an absurd learning rate for one method): its job exits non-zero,
    its MLflow run is FAILED, Snakemake leaves none of its outputs, the healthy
    method's job finishes, and the report cannot be built from what is left."""
    cfg = write_preset(workdir, tiny_preset(
        methods=["rectified_flow", "cfm"], train_overrides={"cfm": {"lr": 1.0e15}}))
    targets = [RESULT, "results/train/8gaussians/cfm/seed0.json"]
    proc = run_snakemake(workdir, *targets, "--cores", "2", "--keep-going",
                         "--configfile", cfg, env=pipeline_env)
    assert proc.returncode != 0, proc.stdout[-3000:]
    log = (workdir / "logs" / "train" / "8gaussians" / "cfm" / "seed0.log").read_text()
    assert "loss is" in log and "training stopped" in log, log[-2000:]
    assert not (workdir / "results" / "models" / "8gaussians" / "cfm").exists() or not any(
        (workdir / "results" / "models" / "8gaussians" / "cfm").iterdir())
    assert not (workdir / targets[1]).exists()
    assert (workdir / RESULT).exists()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=pipeline_env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("sfbench-tiny")
    status = {r.data.tags["job_key"]: r.info.status
              for r in client.search_runs([exp.experiment_id])}
    assert status["train/8gaussians/cfm/seed0"] == "FAILED"
    assert status["train/8gaussians/rectified_flow/seed0"] == "FINISHED"

    dry = run_snakemake(workdir, "-n", "--configfile", cfg, env=pipeline_env)
    assert "rule train:" in dry.stdout and "cfm" in dry.stdout  # the report waits for it
