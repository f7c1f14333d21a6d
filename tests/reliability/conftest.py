"""Shared pieces of the fault-injection tests: a tiny preset, scratch workflows, small files.

Each test injects one fault named in docs/RELIABILITY.md and checks the
promised outcome; its docstring starts with the number of the promise.
"""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "pipeline"))

from pipeline_helpers import copy_workflow, load_preset  # noqa: E402

from sfbench.checkpoint import build_model, save_model  # noqa: E402
from sfbench.io import save_npz  # noqa: E402

SMALL_NET = {"kind": "mlp", "dim": 2, "width": 16, "depth": 2, "activation": "silu",
             "time_embed_dim": 8}


def tiny_preset(**changes) -> dict:
    """The smoke preset cut to one dataset, one solver cell and a short training
    (without its image, reflow and decomposition parts: every fault here is one of
    the jobs the 2-D part already has; nor its external model, which trains nothing)."""
    cfg = copy.deepcopy(load_preset("smoke"))
    for block in ("images", "reflow", "decompose", "external"):
        cfg.pop(block, None)
    cfg.update(preset="tiny", mlflow_experiment="sfbench-tiny", methods=["rectified_flow"])
    cfg["data"].update(n_train=1000, n_test=100)
    cfg["train"].update(steps=100, batch_size=64, checkpoint_every=50, warmup_steps=10,
                        network={**cfg["train"]["network"], "width": 16, "time_embed_dim": 8})
    cfg["sampling"].update(n_samples=100, solvers=["euler"], steps=[2], adaptive={},
                           trajectory={"solver": "euler", "steps": 2, "n_points": 10})
    cfg["evaluation"]["nll"]["n_points"] = 20
    for key, value in changes.items():
        target = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return cfg


def write_preset(workdir: Path, cfg: dict, name: str = "tiny") -> str:
    path = workdir / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path.relative_to(workdir))


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A scratch working directory holding a copy of the workflow files."""
    return copy_workflow(tmp_path / "wf")


@pytest.fixture
def pipeline_env(workdir) -> dict:
    """Jobs track into a new store inside the workdir, in the preset's experiment."""
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
            "SFBENCH_MLFLOW_EXPERIMENT": "sfbench-tiny", "SFBENCH_CONFIG_HASH": ""}


def model_file(path: Path) -> Path:
    """An (untrained) rectified-flow model file as `sfbench train` writes it."""
    model = build_model("rectified_flow", {}, SMALL_NET)
    save_model(path, model, schedule_kwargs={}, network=SMALL_NET,
               meta={"dataset": "8gaussians", "seed": 0})
    return path


def data_file(path: Path, n: int = 200) -> Path:
    rng = np.random.default_rng(0)
    return save_npz(path, train=rng.normal(size=(n, 2)).astype(np.float32),
                    test=rng.normal(size=(n, 2)).astype(np.float32))


def flipped_copies(raw: bytes, n: int = 200):
    """``raw`` with one bit flipped, at ``n`` positions spread over the file."""
    for pos in range(0, len(raw), max(1, len(raw) // n)):
        flipped = bytearray(raw)
        flipped[pos] ^= 0x08
        yield pos, bytes(flipped)


def wait_for(predicate, timeout: float, what: str, proc=None):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process ended (status {proc.returncode}) before {what}")
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def job_processes(parent_pid: int, command: str) -> list[psutil.Process]:
    """The `python -m sfbench <command>` processes started under ``parent_pid``."""
    found = []
    for child in psutil.Process(parent_pid).children(recursive=True):
        try:
            argv = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "sfbench" in argv and command in argv and os.path.basename(argv[0]).startswith("py"):
            found.append(child)
    return found
