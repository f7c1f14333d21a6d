"""Promises 2 and 3: a killed checkpoint write and corrupted checkpoint, model and sample files."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import SMALL_NET, data_file, flipped_copies, model_file

from sfbench.checkpoint import CHECKPOINT_NAME, load_file, load_model
from sfbench.cli import main
from sfbench.data import get_dataset
from sfbench.errors import CheckpointError, DataFileError
from sfbench.io import load_array, save_npz
from sfbench.train import TrainConfig, train

CONFIG = dict(method="rectified_flow", steps=60, batch_size=64, checkpoint_every=20,
              log_every=10, warmup_steps=5, network=SMALL_NET)

# Trains CONFIG; when the second checkpoint (step 40) is written, lowers the
# file-size limit below that file's size and restores the default action of
# SIGXFSZ: the kernel kills the process in the middle of the write, before any
# Python handler or `finally` can run (what `kill -9` does).
KILLED_WRITER = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    import sfbench.train as T
    from sfbench.data import get_dataset

    cfg, ckpt_dir = T.TrainConfig(**json.loads(sys.argv[1])), sys.argv[2]
    real_save, calls = T.save_atomic, []

    def save_and_die_half_way(obj, path):
        calls.append(path)
        if len(calls) == 2:
            half = Path(path).stat().st_size // 2
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            resource.setrlimit(resource.RLIMIT_FSIZE, (half, half))
        return real_save(obj, path)

    T.save_atomic = save_and_die_half_way
    T.train(cfg, get_dataset("8gaussians").sample(2000, seed=0), ckpt_dir, progress=False)
    """
)


def test_kill_during_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    """2. A process killed while writing a checkpoint leaves only a temporary file; the
    previous checkpoint loads, and training resumes from it to the same weights."""
    import json

    ckpt_dir = tmp_path / "ckpt"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, json.dumps(CONFIG), str(ckpt_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-3000:]
    leftovers = sorted(p.name for p in ckpt_dir.iterdir())
    assert CHECKPOINT_NAME in leftovers
    temporaries = [n for n in leftovers if n != CHECKPOINT_NAME]
    assert len(temporaries) == 1 and temporaries[0].endswith(".tmp"), leftovers
    assert load_file(ckpt_dir / CHECKPOINT_NAME, "checkpoint")["step"] == 20

    data = get_dataset("8gaussians").sample(2000, seed=0)
    resumed = train(TrainConfig(**CONFIG), data, checkpoint_dir=ckpt_dir, progress=False)
    reference = train(TrainConfig(**CONFIG), data, checkpoint_dir=tmp_path / "ref", progress=False)
    assert resumed.resumed_from_step == 20
    for name, tensor in reference.model.net.state_dict().items():
        assert torch.equal(resumed.model.net.state_dict()[name], tensor), name


def test_every_bit_flip_in_a_model_file_is_refused_or_harmless(tmp_path):
    """3. A bit flip anywhere in a model file either fails the load, naming the file,
    or (zip bookkeeping bytes) leaves the loaded weights exactly as written."""
    good = model_file(tmp_path / "good.pt")
    expected = load_model(good).net.state_dict()
    bad = tmp_path / "seed0.pt"
    refused = 0
    for pos, raw in flipped_copies(good.read_bytes()):
        bad.write_bytes(raw)
        try:
            weights = load_model(bad).net.state_dict()
        except CheckpointError as err:
            assert str(bad) in str(err), err
            refused += 1
            continue
        for name, tensor in expected.items():
            assert torch.equal(weights[name], tensor), f"flip at byte {pos} changed {name}"
    assert refused > 0


def test_truncated_model_file_is_refused(tmp_path):
    """3. A truncated model file is refused with its name."""
    path = model_file(tmp_path / "seed0.pt")
    raw = path.read_bytes()
    for keep in (0, 100, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:keep])
        with pytest.raises(CheckpointError, match=str(path)):
            load_model(path)


def test_bit_flip_in_a_checkpoint_stops_the_resume(tmp_path):
    """3. A corrupted resumable checkpoint is refused, naming it, before any training step."""
    data = get_dataset("8gaussians").sample(500, seed=0)
    cfg = TrainConfig(**{**CONFIG, "steps": 40})
    train(TrainConfig(**{**CONFIG, "steps": 40, "checkpoint_every": 20}), data,
          checkpoint_dir=tmp_path, progress=False)
    state = load_file(tmp_path / CHECKPOINT_NAME, "checkpoint")
    state["step"] = 20  # an unfinished run, so that the rerun resumes
    from sfbench.checkpoint import save_atomic

    save_atomic(state, tmp_path / CHECKPOINT_NAME)
    raw = bytearray((tmp_path / CHECKPOINT_NAME).read_bytes())
    weights = next(iter(state["net"].values())).numpy().tobytes()
    at = bytes(raw).find(weights)  # the first weight matrix, as torch stored it
    assert at > 0
    raw[at + len(weights) // 2] ^= 0x08
    (tmp_path / CHECKPOINT_NAME).write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=str(tmp_path / CHECKPOINT_NAME)):
        train(cfg, data, checkpoint_dir=tmp_path, progress=False)


def test_every_bit_flip_in_a_sample_file_is_refused_or_harmless(tmp_path):
    """3. A bit flip in a sample .npz fails the read (zip CRC), naming the file, or
    leaves the samples exactly as written."""
    samples = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    good = save_npz(tmp_path / "good.npz", samples=samples)
    bad = tmp_path / "seed0.npz"
    refused = 0
    for pos, raw in flipped_copies(good.read_bytes()):
        bad.write_bytes(raw)
        try:
            loaded = load_array(bad, "samples", dim=2)
        except DataFileError as err:
            assert str(bad) in str(err), err
            refused += 1
            continue
        assert np.array_equal(loaded, samples), f"flip at byte {pos} changed the samples"
    assert refused > 0
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataFileError, match=str(bad)):
        load_array(bad, "samples", dim=2)


def _corrupt(path, at: float = 0.5):
    raw = bytearray(path.read_bytes())
    raw[int(len(raw) * at)] ^= 0x08
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("command", ["sweep", "nll"])
def test_job_on_a_corrupt_model_exits_nonzero_and_writes_no_metric(command, tmp_path, capsys):
    """3. `sfbench sweep` / `sfbench evaluate --nll` on a corrupted model: exit status 1,
    the error names the file, no result and no samples are written."""
    model = model_file(tmp_path / "seed0.pt")
    _corrupt(model)
    data = data_file(tmp_path / "data.npz")
    result, samples = tmp_path / "out" / "result.json", tmp_path / "out" / "samples.npz"
    if command == "sweep":
        argv = ["sweep", "--model", str(model), "--data", str(data), "--solvers", "euler",
                "--steps", "2", "--n-samples", "50", "--out", str(samples)]
    else:
        argv = ["evaluate", "--nll", "--model", str(model), "--data", str(data),
                "--n-test", "10"]
    assert main([*argv, "--result", str(result)]) == 1
    assert str(model) in capsys.readouterr().err
    assert not result.exists() and not samples.exists()


def test_evaluate_on_a_corrupt_sample_file_exits_nonzero(tmp_path, capsys):
    """3. `sfbench evaluate --samples` on a truncated sample file: exit 1, file named, no result."""
    samples = save_npz(tmp_path / "seed0.npz", samples=np.zeros((100, 2), np.float32))
    samples.write_bytes(samples.read_bytes()[:-30])
    data = data_file(tmp_path / "data.npz")
    result = tmp_path / "result.json"
    argv = ["evaluate", "--samples", str(samples), "--data", str(data), "--result", str(result)]
    assert main(argv) == 1
    assert str(samples) in capsys.readouterr().err
    assert not result.exists()
