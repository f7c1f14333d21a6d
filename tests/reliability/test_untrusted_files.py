"""Promise 13: a model file or checkpoint whose pickle would run code is refused unread.

The planted files call ``os.system("touch <marker>")`` when unpickled: harmless,
but observable, so each test can show that nothing of the file ran.
"""

from __future__ import annotations

import os
import random
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SMALL_NET, model_file

import sfbench.train as T
from sfbench.checkpoint import CHECKPOINT_NAME, load_file, rng_states, save_atomic, set_rng_states
from sfbench.data import get_dataset
from sfbench.errors import CheckpointError
from sfbench.eval.classifier import load_classifier

TRUST_PICKLE_ENV = "SFBENCH_TRUST_PICKLE"  # the documented opt-in
CONFIG = dict(method="rectified_flow", steps=40, batch_size=64, checkpoint_every=20,
              log_every=10, warmup_steps=5, network=SMALL_NET)


class _RunsCode:
    """Unpickling this runs a shell command: the attack of a doctored ``.pt`` file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _planted(path, marker, contents: dict):
    """``contents`` as sfbench would write them, plus an object that touches ``marker``."""
    torch.save({**contents, "payload": _RunsCode(marker)}, path)
    return path


def _sfbench(*argv, cwd):
    """The real CLI in a fresh process, without the opt-in and without tracking."""
    env = {k: v for k, v in os.environ.items()
           if k not in (TRUST_PICKLE_ENV, "SFBENCH_MLFLOW_EXPERIMENT")}
    return subprocess.run([sys.executable, "-m", "sfbench", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _assert_refused(message: str, path):
    assert str(path) in message, message
    assert "run code" in message and TRUST_PICKLE_ENV in message, message


def test_sample_refuses_a_model_file_that_would_run_code(tmp_path):
    """13. `sfbench sample --model` on a doctored model file: exit 1, the error names the
    file and the opt-in, the file's code never ran, no samples and no result."""
    marker = tmp_path / "code-ran"
    contents = load_file(model_file(tmp_path / "good.pt"), "model file")
    evil = _planted(tmp_path / "seed0.pt", marker, contents)
    out, result = tmp_path / "samples.npz", tmp_path / "result.json"
    proc = _sfbench("sample", "--model", evil, "--solver", "euler", "--steps", 2,
                    "--n-samples", 10, "--out", out, "--result", result, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert not marker.exists(), "the model file's code ran"
    _assert_refused(proc.stderr, evil)
    assert not out.exists() and not result.exists()


def test_training_refuses_a_checkpoint_that_would_run_code(tmp_path):
    """13. `sfbench train` resuming from a doctored `last.pt`: exit 1, the error names the
    checkpoint and the opt-in, its code never ran, no model and no result."""
    marker = tmp_path / "code-ran"
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    evil = _planted(ckpt_dir / CHECKPOINT_NAME, marker, {"step": 20})
    out, result = tmp_path / "model.pt", tmp_path / "result.json"
    proc = _sfbench("train", "--method", "rectified_flow", "--dataset", "8gaussians",
                    "--n-train", 200, "--steps", 40, "--batch-size", 16, "--checkpoint-dir",
                    ckpt_dir, "--out", out, "--result", result, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert not marker.exists(), "the checkpoint's code ran"
    _assert_refused(proc.stderr, evil)
    assert not out.exists() and not result.exists()


def test_classifier_refuses_a_file_that_would_run_code(tmp_path):
    """13. The digits classifier (the FID extractor) is read the same way."""
    marker = tmp_path / "code-ran"
    evil = _planted(tmp_path / "classifier.pt", marker, {"format": "sfbench-digits-classifier"})
    with pytest.raises(CheckpointError) as err:
        load_classifier(evil)
    _assert_refused(str(err.value), evil)
    assert not marker.exists(), "the classifier file's code ran"


def test_the_opt_in_unpickles_and_so_runs_the_files_code(tmp_path, monkeypatch):
    """13. With SFBENCH_TRUST_PICKLE=1 the file is unpickled, code and all (which also
    shows that the planted payload of the other tests is live); its missing seal then
    refuses it."""
    marker = tmp_path / "code-ran"
    evil = _planted(tmp_path / "seed0.pt", marker, {"format": "sfbench-model-v1"})
    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")
    with pytest.warns(UserWarning, match=TRUST_PICKLE_ENV), \
            pytest.raises(CheckpointError, match="no content hash"):
        load_file(evil, "model file")
    assert marker.exists()


def _checkpoint_at_step_20(ckpt_dir, data, monkeypatch):
    """The first checkpoint of a CONFIG run, left in ``ckpt_dir`` as a killed run leaves it."""
    first = []

    def keep_first(obj, path):
        written = save_atomic(obj, path)
        first.append(written.read_bytes())
        return written

    with monkeypatch.context() as patch:
        patch.setattr(T, "save_atomic", keep_first)
        T.train(T.TrainConfig(**CONFIG), data, checkpoint_dir=ckpt_dir, progress=False)
    (ckpt_dir / CHECKPOINT_NAME).write_bytes(first[0])
    return ckpt_dir / CHECKPOINT_NAME


def test_an_old_checkpoint_with_numpy_state_resumes_only_with_the_opt_in(tmp_path, monkeypatch):
    """13. A checkpoint of an older sfbench (numpy's RNG state pickled as a numpy array) is
    refused, naming the opt-in; with SFBENCH_TRUST_PICKLE=1 it resumes bit-identically."""
    data = get_dataset("8gaussians").sample(2000, seed=0)
    path = _checkpoint_at_step_20(tmp_path / "ckpt", data, monkeypatch)
    state = load_file(path, "checkpoint")
    name, key, *rest = state["rng"]["numpy"]
    state["rng"]["numpy"] = (name, np.asarray(key, dtype=np.uint32), *rest)  # as sfbench wrote it
    save_atomic(state, path)
    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    with pytest.raises(CheckpointError) as err:
        T.train(T.TrainConfig(**CONFIG), data, checkpoint_dir=path.parent, progress=False)
    _assert_refused(str(err.value), path)

    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")
    with pytest.warns(UserWarning, match=TRUST_PICKLE_ENV):
        resumed = T.train(T.TrainConfig(**CONFIG), data, checkpoint_dir=path.parent,
                          progress=False)
    reference = T.train(T.TrainConfig(**CONFIG), data, checkpoint_dir=tmp_path / "ref",
                        progress=False)
    assert resumed.resumed_from_step == 20
    assert resumed.loss_history == reference.loss_history
    for name, tensor in reference.model.net.state_dict().items():
        assert torch.equal(resumed.model.net.state_dict()[name], tensor), name


def test_every_rng_state_round_trips_through_a_checkpoint_file(tmp_path, monkeypatch):
    """1. The RNG states a checkpoint holds load without the opt-in (tensors and plain values
    only) and restore numpy, python, torch and the training generator exactly."""
    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    np.random.seed(3)
    random.seed(3)
    np.random.normal(size=7)  # a cached Gaussian in numpy's legacy state, too
    gen = torch.Generator().manual_seed(3)
    save_atomic({"rng": rng_states(gen)}, tmp_path / CHECKPOINT_NAME)

    def draws():
        return (np.random.get_state()[1].copy(), np.random.normal(size=5), random.random(),
                torch.rand(3), torch.rand(3, generator=gen))

    expected = draws()
    draws()  # move every generator on
    set_rng_states(load_file(tmp_path / CHECKPOINT_NAME, "checkpoint")["rng"], gen)
    for got, want in zip(draws(), expected, strict=True):
        if isinstance(want, torch.Tensor):
            assert torch.equal(got, want)
        else:
            assert np.array_equal(got, want)
