"""Promise 12: a changed parameter, package source file or library version reruns
exactly the jobs that depend on it (checked with dry runs after one real run).

Needs every rule's params to carry `code=code_fingerprint(rule)` and
`env=environment_fingerprint()` (workflow/rules/common.smk, job_params);
docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import REPO, tiny_preset, write_preset
from pipeline_helpers import copy_workflow, job_counts, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny preset with two methods run to the end, on a private copy of the package."""
    root = tmp_path_factory.mktemp("provenance")
    workdir = copy_workflow(root / "wf")
    package = root / "pkg"
    shutil.copytree(REPO / "src" / "sfbench", package / "sfbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(package), "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    cfg = tiny_preset(methods=["rectified_flow", "ddpm"])
    preset = write_preset(workdir, cfg)
    proc = run_snakemake(workdir, "--cores", "2", "--configfile", preset, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return {"workdir": workdir, "package": package / "sfbench", "env": env, "cfg": cfg,
            "preset": preset, "root": root}


def planned(run, env_extra=None, preset=None) -> dict[str, int]:
    proc = run_snakemake(run["workdir"], "-n", "--configfile", preset or run["preset"],
                         env={**run["env"], **(env_extra or {})})
    assert proc.returncode == 0, proc.stdout[-3000:]
    if "Nothing to be done" in proc.stdout:
        return {}
    counts = job_counts(proc.stdout)
    counts.pop("total", None)
    counts.pop("all", None)  # the target rule, not a job that computes
    return counts


def test_nothing_changed_plans_nothing(finished):
    """12. Without a change, the dry run plans no job."""
    assert planned(finished) == {}


@pytest.mark.parametrize(
    "module, expected",
    [
        ("report/tables.py", {"report": 1}),
        # the sweep command computes the NLL too; the noise floor (`sfbench reference`)
        # samples the dataset, not a model, so no solver or NLL module is in its closure
        ("eval/nll.py", {"sweep": 2, "report": 1}),
        ("losses.py", {"train": 2, "sweep": 2, "report": 1}),
        ("solvers/ode.py", {"train": 2, "sweep": 2, "report": 1}),
    ],
)
def test_an_edited_source_file_reruns_the_jobs_that_import_it(finished, module, expected):
    """12. Editing one package module reruns the jobs whose command imports it (and
    what reads their outputs), no others. (The training imports the solvers for reflow.)"""
    path = finished["package"] / module
    before, text = path.stat(), path.read_text()
    # A real edit: Snakemake does not rerun on a new time alone when the content it
    # recorded is unchanged.
    path.write_text(text + "# edited\n")
    try:
        assert planned(finished) == expected
    finally:
        path.write_text(text)
        os.utime(path, (before.st_atime, before.st_mtime))


def test_a_changed_parameter_reruns_only_that_method(finished):
    """12. A training setting changed for one method reruns that method's jobs only."""
    cfg = {**finished["cfg"], "train_overrides": {"ddpm": {"lr": 1.0e-3}}}
    preset = write_preset(finished["workdir"], cfg, name="tiny_lr")
    counts = planned(finished, preset=preset)
    assert counts == {"job_config": 1, "train": 1, "sweep": 1, "report": 1}


def test_a_changed_library_version_reruns_every_computing_job(finished):
    """12. Another numpy version (a fake distribution first on the path) reruns every
    job that runs package code; writing the training settings does not."""
    fake = finished["root"] / "fake-env"
    dist = fake / "numpy-0.0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 0.0.1\n")
    path = f"{fake}{os.pathsep}{finished['env']['PYTHONPATH']}"
    counts = planned(finished, env_extra={"PYTHONPATH": path})
    assert counts == {"data": 1, "reference": 1, "train": 2, "sweep": 2, "report": 1}
