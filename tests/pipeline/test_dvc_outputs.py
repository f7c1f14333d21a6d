"""dvc.yaml stores everything the workflow writes: every output that Snakemake plans
for any preset lies under one of the benchmark stage's outputs, so `dvc push` /
`dvc pull` round-trips the whole run (the smoke test checks the bytes)."""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml
from pipeline_helpers import REPO, run_snakemake

PRESETS = sorted(p.stem for p in (REPO / "config").glob("*.yaml"))


def dvc_outputs() -> dict[str, dict]:
    """Every path of the benchmark stage (outs, metrics, plots) with its settings."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["benchmark"]
    paths = {}
    for kind in ("outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            (path, settings), = entry.items() if isinstance(entry, dict) else ((entry, {}),)
            paths[path] = settings or {}
    return paths


def planned_outputs(workdir: Path, preset: str) -> list[str]:
    """Every output file of the preset's full DAG (`snakemake --summary` lists them all)."""
    proc = run_snakemake(workdir, "--summary", "--configfile", f"config/{preset}.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "\t" in line]
    assert lines[0].startswith("output_file"), lines[:3]
    return [line.split("\t")[0] for line in lines[1:]]


def covered(path: str, outs) -> bool:
    parts = PurePosixPath(path).parts
    return any(parts[: len(PurePosixPath(o).parts)] == PurePosixPath(o).parts for o in outs)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_planned_output_is_a_dvc_output(workdir, preset):
    outs = dvc_outputs()
    files = planned_outputs(workdir, preset)
    assert len(files) > 20
    missing = sorted({str(PurePosixPath(f).parent) for f in files if not covered(f, outs)})
    assert not missing, f"{preset}: dvc.yaml stores nothing under {missing}"


def test_git_tracks_the_report_and_dvc_the_heavy_artifacts():
    """The report's text, tables, figures and metrics are `cache: false` (git shows them,
    `dvc metrics diff` reads them from any commit); models and samples are cached."""
    outs = dvc_outputs()
    in_git = {p for p, s in outs.items() if s.get("cache") is False}
    assert {"results/report/report.md", "results/report/metrics.json",
            "results/report/tables", "results/report/figures",
            "results/report/provenance.json"} <= in_git
    assert not in_git & {"results/models", "results/samples", "checkpoints"}
    # ... and .gitignore lets git see exactly the uncached ones
    for path in outs:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{path}/x"
                                  if not Path(path).suffix else path], cwd=REPO).returncode == 0
        assert ignored == (path not in in_git), path


def test_dvc_yaml_is_the_one_the_job_plan_renders():
    """dvc.yaml's outputs come from the job plan's paths and the report manifest:
    regenerate it with `python -m sfbench.pipeline.dvc > dvc.yaml`."""
    from sfbench.pipeline import dvc

    assert (REPO / "dvc.yaml").read_text() == dvc.render()
