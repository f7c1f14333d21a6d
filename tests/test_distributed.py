"""Data-parallel training under torchrun (gloo on CPU): two processes end with
the weights of one process with the same settings, and a checkpoint resumes
across process counts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import sfbench.train as train_mod
from sfbench.checkpoint import CHECKPOINT_NAME, load_file, load_model
from sfbench.cli import main as sfbench_main

# A float32 all-reduce sums the two halves' gradients in another order than one
# process accumulates them; AdamW carries the round-off, which stays near 1e-7.
ATOL = 1e-5


def train_args(tmp_path, out, *extra) -> list[str]:
    config = tmp_path / "small.yaml"
    config.write_text("network: {kind: mlp, dim: 2, width: 32, depth: 2, time_embed_dim: 16}\n")
    return ["train", "--threads", "1", "--method", "rectified_flow", "--dataset", "8gaussians",
            "--n-train", "2000", "--config", str(config), "--steps", "40", "--batch-size", "64",
            "--warmup-steps", "5", "--checkpoint-every", "20", "--micro-batches", "2",
            "--no-progress", "--out", str(out), "--result", str(out.with_suffix(".json")),
            *extra]


def torchrun(n: int, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
         "-m", "sfbench", *args],
        capture_output=True, text=True, timeout=600,
    )


def assert_close_weights(a, b):
    sa, sb = load_model(a).net.state_dict(), load_model(b).net.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], atol=ATOL, rtol=0, msg=name)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the same settings in one process (two micro-batches accumulated)."""
    tmp = tmp_path_factory.mktemp("one")
    out = tmp / "one.pt"
    assert sfbench_main(train_args(tmp, out)) == 0
    return out


def test_two_processes_give_the_weights_of_one(one_process, tmp_path):
    out = tmp_path / "two.pt"
    proc = torchrun(2, train_args(tmp_path, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_close_weights(one_process, out)
    # trained, not the initial weights: a different seed's run is far away
    other = tmp_path / "seed1.pt"
    assert sfbench_main(train_args(tmp_path, other, "--seed", "1")) == 0
    with pytest.raises(AssertionError):
        assert_close_weights(one_process, other)


def test_a_one_process_checkpoint_resumes_under_two_processes(one_process, tmp_path,
                                                               monkeypatch):
    out, ckpt = tmp_path / "resumed.pt", tmp_path / "ckpt"
    calls = {"n": 0}
    real_loss = train_mod.training_loss

    def interrupted(*args, **kwargs):  # two micro-batches a step: call 50 is in step 25
        calls["n"] += 1
        if calls["n"] == 50:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_mod, "training_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sfbench_main(train_args(tmp_path, out, "--checkpoint-dir", str(ckpt)))
    state = load_file(ckpt / CHECKPOINT_NAME, "checkpoint")
    assert state["step"] == 20 and set(state["micro_batch_generators"]) == {"0", "1"}
    assert not out.exists()

    proc = torchrun(2, train_args(tmp_path, out, "--checkpoint-dir", str(ckpt)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    assert json.loads(out.with_suffix(".json").read_text())["result"]["resumed_from_step"] == 20
    assert_close_weights(one_process, out)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path):
    out = tmp_path / "bad.pt"
    args = train_args(tmp_path, out)
    args[args.index("--micro-batches") + 1] = "3"
    args[args.index("--batch-size") + 1] = "63"
    proc = torchrun(2, args)
    assert proc.returncode != 0
    assert "micro_batches = 3 does not split over 2 processes" in proc.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()
