"""git_state: a run's own outputs (the tracked report under results/) do not make its
commit "uncommitted"; any other tracked change does, from any directory of the checkout."""

from __future__ import annotations

import subprocess

from sfbench.tracking.identity import git_state


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_pipeline_outputs_are_not_uncommitted_changes(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "results" / "report").mkdir(parents=True)
    (tmp_path / "results" / "report" / "report.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "keep").write_text("")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_state(tmp_path)["git_dirty"] == "false"

    (tmp_path / "results" / "report" / "report.md").write_text("new\n")
    assert git_state(tmp_path)["git_dirty"] == "false"

    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path)["git_dirty"] == "true"
    assert git_state(tmp_path / "sub")["git_dirty"] == "true"
