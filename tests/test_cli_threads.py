"""A command's torch threads: ``--threads``, else ``$OMP_NUM_THREADS`` (the pipeline's), else 1."""

from __future__ import annotations

import pytest
import torch

from sfbench import cli
from sfbench.commands import data as data_command


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, None, 1),  # by hand: one thread
        (None, "2", 2),  # the pipeline's OMP_NUM_THREADS={threads}
        (None, "3,1", 3),  # a nested OpenMP setting: its outer level
        (None, "", 1),
        (None, "many", 1),
        (None, "0", 1),
        (4, "2", 4),  # the flag wins
        (2, None, 2),
    ],
)
def test_thread_count(flag, env, expected):
    environ = {} if env is None else {"OMP_NUM_THREADS": env}
    assert cli.thread_count(flag, environ) == expected


def threads_seen_by_run(monkeypatch, tmp_path, *argv: str) -> int:
    """torch's thread count inside the command's ``run``, with ``sfbench data`` stubbed out."""
    seen = []

    def fake_run(args):
        seen.append(torch.get_num_threads())
        return {"command": "data", "settings": {}, "result": {}, "outputs": []}

    monkeypatch.setattr(data_command, "run", fake_run)
    assert cli.main(["data", "--dataset", "8gaussians", "--out", str(tmp_path / "d.npz"),
                     "--result", str(tmp_path / "d.json"), *argv]) == 0
    return seen[0]


def test_a_command_run_by_hand_uses_one_thread_and_restores_the_count(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)  # torch's default on a 2-core machine
    assert threads_seen_by_run(monkeypatch, tmp_path) == 1
    assert torch.get_num_threads() == 2


def test_the_pipelines_omp_num_threads_takes_effect(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_seen_by_run(monkeypatch, tmp_path) == 2


def test_the_flag_overrides_omp_num_threads(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_seen_by_run(monkeypatch, tmp_path, "--threads", "3") == 3


def test_zero_threads_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "--dataset", "8gaussians", "--out", str(tmp_path / "d.npz"),
                  "--result", str(tmp_path / "d.json"), "--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads: must be a positive integer" in capsys.readouterr().err
