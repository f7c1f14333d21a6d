"""Promise 5: a corrupted file in the DVC remote or cache is never silently used."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow
CONTENT = "weights of a trained model\n"


def _dvc() -> str:
    exe = Path(sys.executable).with_name("dvc")
    if not exe.exists():
        pytest.skip("dvc is not installed (pip install -e '.[pipeline]')")
    return str(exe)


def _run(args, cwd, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(cwd.parent / "home"), "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def pushed(tmp_path):
    """A git + DVC repository with the project's .dvc/config (remote moved into tmp_path)
    and one pushed file; returns (repo, remote)."""
    repo, remote = tmp_path / "repo", tmp_path / "remote"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run([_dvc(), "init", "-q"], repo)
    config = (REPO / ".dvc" / "config").read_text()
    config = config.replace("~/.cache/sfbench/dvc-remote", str(remote))
    (repo / ".dvc" / "config").write_text(config)
    (repo / "model.pt").write_text(CONTENT)
    _run([_dvc(), "add", "-q", "model.pt"], repo)
    _run([_dvc(), "push", "-q"], repo)
    return repo, remote


def test_the_project_remote_verifies_downloads():
    """5. The project's default remote re-hashes what it downloads (`verify = true`)."""
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    remote = config["core"]["remote"]
    assert config[f"'remote \"{remote}\"'"].getboolean("verify")


def test_corrupted_remote_object_fails_the_pull(pushed):
    """5. A remote object whose bytes no longer match its hash: `dvc pull` fails and
    the workspace does not receive the corrupted file."""
    repo, remote = pushed
    (obj,) = [p for p in remote.rglob("*") if p.is_file()]
    obj.chmod(0o644)
    obj.write_text("corrupted in the remote\n")
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "model.pt").unlink()
    proc = _run([_dvc(), "pull"], repo, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert not (repo / "model.pt").exists() or (repo / "model.pt").read_text() == CONTENT


def test_corrupted_cache_object_is_not_checked_out(pushed):
    """5. A local cache object whose bytes changed: the pull does not check it out
    (it fetches the good copy again from the remote)."""
    repo, _ = pushed
    (obj,) = [p for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file()]
    obj.chmod(0o644)
    obj.write_text("corrupted in the cache\n")
    (repo / "model.pt").unlink()
    _run([_dvc(), "pull"], repo, check=False)
    assert (repo / "model.pt").read_text() == CONTENT
