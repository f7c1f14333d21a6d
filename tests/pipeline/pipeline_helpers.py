"""Helpers for running the workflow in a scratch copy of the repository's workflow files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
#: What a workflow run reads besides the package (examples: the presets' external models).
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "examples")


def snakemake_bin() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    if exe.exists():
        return str(exe)
    found = shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed (pip install -e '.[pipeline]')")
    return found


def copy_workflow(dest: Path) -> Path:
    """The workflow files (not results) copied into ``dest``, which becomes a workdir."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest


def copy_external_models(dest: Path, preset: str = "smoke") -> list[str]:
    """The files of a preset's external models, copied to the same relative paths under
    ``dest`` (a working directory other than the checkout); their paths."""
    copied = []
    for entry in load_preset(preset).get("external", []):
        folder = (REPO / entry["source"]).parent
        for file in sorted(folder.iterdir()):
            relative = file.relative_to(REPO).as_posix()
            (dest / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, dest / relative)
            copied.append(relative)
    return copied


def new_machine_env(env: dict | None = None) -> dict:
    """``os.environ`` (plus ``env``) as a shell on a new machine has it: no virtual
    environment on PATH, none active. Snakemake is then reached only by its path,
    as the README's `.venv/bin/snakemake` does, and a job that ran a bare `python`
    would get the system's interpreter, without sfbench."""
    full_env = {**os.environ, **(env or {})}
    venv_bins = {str(Path(sys.executable).parent)}
    if full_env.get("VIRTUAL_ENV"):
        venv_bins.add(str(Path(full_env.pop("VIRTUAL_ENV")) / "bin"))
    full_env["PATH"] = os.pathsep.join(
        entry for entry in full_env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if entry and entry not in venv_bins
    )
    return full_env


def run_snakemake(workdir: Path, *args: str, timeout: float = 600, env: dict | None = None):
    """Run snakemake in ``workdir`` from a new machine's PATH (:func:`new_machine_env`);
    returns the CompletedProcess (stdout and stderr merged)."""
    full_env = new_machine_env(env)
    return subprocess.run(
        [snakemake_bin(), *args],
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def planned_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job in a dry run's output, in order.

    Snakemake prints each planned job's ``resources:`` after the profile's
    ``set-resources`` and ``default-resources`` are applied: what an executor
    plugin turns into a submission (sbatch flags, a pod's requests).
    """
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
        if head:
            pairs = (item.split("=", 1) for item in res.group(1).split(", ")) if res else ()
            jobs.append((head.group(1), {k: v for k, v in pairs}))
    return jobs


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a snakemake (dry) run as {rule: count}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ") and "count" in line)
    counts = {}
    for line in lines[start + 2 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def load_preset(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
