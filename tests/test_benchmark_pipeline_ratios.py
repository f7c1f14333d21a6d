"""The pipeline benchmark's guarded figures come from the record's raw figures, baseline too."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks/ is a folder of the repository, not a package

from benchmarks.__main__ import pipeline_ratios  # noqa: E402
from benchmarks.tables import render_pipeline  # noqa: E402


def record(**extra) -> dict:
    return {"preset": "default", "cores": 2, "total_wall_s": 600.0, "total_cpu_s": 1000.0,
            "mean_load_during": 2.0, "snakemake_cpu_s": 25.0,
            "overhead": {"outside_fraction_of_job_time": 0.2, "outside_fraction_of_core_time": 0.3,
                         "rules": []}, **extra}


def test_snakemake_share_and_baseline_ratio_follow_the_raw_figures():
    ratios = pipeline_ratios(record())
    assert ratios["pipeline_default_snakemake_cpu_fraction"]["value"] == pytest.approx(0.025)
    assert ratios["pipeline_default_snakemake_cpu_fraction"]["better"] == "lower"
    assert "pipeline_default_wall_vs_baseline" not in ratios  # no baseline measured
    with_base = pipeline_ratios(record(baseline={"total_wall_s": 1200.0}))
    assert with_base["pipeline_default_wall_vs_baseline"]["value"] == pytest.approx(0.5)
    assert with_base["pipeline_default_wall_vs_baseline"]["target"] == 0.55


def test_the_rendered_block_states_snakemake_cpu_and_the_baseline():
    r = record(baseline={"commit": "abc1234", "jobs": 149, "total_wall_s": 1500.0,
                         "total_cpu_s": 2900.0})
    text = render_pipeline(r)
    assert "**2.5%** of the run's CPU" in text
    assert "commit abc1234, 149 jobs, **1500 s** wall" in text
    assert "**0.40x** the baseline's" in text


def test_baseline_without_a_pipeline_record_names_the_missing_step(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--results-dir", str(tmp_path), "baseline",
         "--repo", str(REPO)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "pipeline_default.json does not exist" in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written
