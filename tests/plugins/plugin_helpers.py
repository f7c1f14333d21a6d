"""Installing plug-ins for the tests, offline: the example package with pip, broken ones by hand.

Both are real installations as :mod:`importlib.metadata` sees them (a
``.dist-info`` with ``entry_points.txt`` on a path entry); the tests put that
path on ``PYTHONPATH`` of the processes they start, so the pytest process's
own registries stay as the checkout ships them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sfbench

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sfbench-plugin-example"
#: the directory holding the sfbench under test (a worktree's src/, or the editable install's)
SFBENCH_SRC = Path(sfbench.__file__).resolve().parents[1]


def install_example(target: Path) -> Path:
    """``pip install --target`` of the example, without network or build isolation.

    Built from a copy: a build in the source tree would leave build/ and egg-info there.
    """
    source = target.parent / "example-src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target),
         str(source)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, (
        "could not install the example plug-in (it needs setuptools>=70.1 in this "
        f"environment, the dev extra):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return target


def write_distribution(root: Path, name: str, entry_points: dict[str, dict[str, str]],
                       modules: dict[str, str]) -> Path:
    """A minimal installed distribution under ``root``: its modules and a ``.dist-info``
    (METADATA, entry_points.txt), as pip would leave it."""
    root.mkdir(parents=True, exist_ok=True)
    for filename, source in modules.items():
        (root / filename).write_text(source)
    info = root / f"{name.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in entry_points.items()
    ))
    return root


def plugin_env(*paths: Path, env: dict | None = None) -> dict:
    """The environment of a process that sees the plug-ins installed under ``paths`` and
    the sfbench under test."""
    env = dict(os.environ if env is None else env)
    entries = [*map(str, paths), str(SFBENCH_SRC)]
    if env.get("PYTHONPATH"):
        entries.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_python(code: str, *paths: Path, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=plugin_env(*paths),
                          capture_output=True, text=True, timeout=300)
