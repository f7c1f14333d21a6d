"""A plug-in method, solver and metric through the whole workflow: validation, training,
sweeps and the report, with no edit to sfbench (a smoke-sized preset in a scratch copy
of the workflow; about 1 min of CPU, 1 to 1.5 min wall on 2 cores)."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from pipeline_helpers import copy_workflow, new_machine_env, snakemake_bin
from plugin_helpers import REPO, plugin_env

pytestmark = pytest.mark.slow

METHOD, SOLVER, METRIC = "rf_logit_normal", "ralston", "sw2"


def tiny_preset() -> dict:
    """config/smoke.yaml cut to one dataset, two methods and short step counts."""
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    for stage in ("images", "reflow", "decompose", "external"):
        cfg.pop(stage)
    cfg.update(preset="plugins", mlflow_experiment="sfbench-plugins",
               methods=["rectified_flow", METHOD])
    cfg["data"].update(n_train=1000, n_test=200)
    cfg["train"].update(steps=100, checkpoint_every=100)
    cfg["sampling"].update(solvers=["euler", SOLVER], steps=[2, 4], native=False,
                           adaptive={"dopri5": [1.0e-2]},
                           trajectory={"solver": SOLVER, "steps": 4, "n_points": 20},
                           straightness={"n_points": 20, "steps": 4})
    cfg["evaluation"]["nll"] = {"n_points": 50, "rtol": 1.0e-2, "atol": 1.0e-2}
    return cfg


@pytest.fixture(scope="module")
def run(example_plugin, tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("plugin_pipeline") / "wf")
    (root / "config" / "plugins.yaml").write_text(yaml.safe_dump(tiny_preset()))
    # a new machine's PATH (no venv: jobs must find the plug-in through their interpreter
    # and PYTHONPATH, as a user's would through site-packages) and a fresh MLflow store
    env = {k: v for k, v in new_machine_env(plugin_env(example_plugin)).items()
           if k not in ("MLFLOW_TRACKING_URI", "SFBENCH_MLFLOW_EXPERIMENT")}
    proc = subprocess.run(
        [snakemake_bin(), "--cores", str(min(2, os.cpu_count() or 1)),
         "--configfile", "config/plugins.yaml"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-8000:]
    return root / "results" / "report"


def test_report_tables_hold_the_plugin_method_solver_and_metric(run):
    best = pd.read_csv(run / "tables" / "best_by_solver.csv")
    row = best[(best["method"] == METHOD) & (best["solver"] == SOLVER)]
    assert len(row) == 1
    assert np.isfinite(row[[f"{METRIC}_mean", "w2_mean", "nfe_mean"]].to_numpy(float)).all()
    assert row["nfe_mean"].item() in (4, 8)  # 2 or 4 steps, 2 NFE each
    cells = pd.read_csv(run / "tables" / "cells.csv")
    ours = cells[cells["solver"] == SOLVER]
    assert sorted(ours["method"].unique()) == ["rectified_flow", METHOD]
    assert sorted(ours["nfe"].unique()) == [4, 8]  # its declared 2 NFE per step, counted
    assert np.isfinite(cells[METRIC].to_numpy(float)).all()
    summary = pd.read_csv(run / "tables" / "summary.csv")
    assert sorted(summary["method"]) == sorted(["rectified_flow", METHOD])
    solvers = pd.read_csv(run / "tables" / "solvers.csv")
    assert SOLVER in set(solvers["solver"])
    text = (run / "report.md").read_text()
    assert METHOD in text and SOLVER in text and "SW2" in text
    assert (run / "figures" / "sw2_vs_nfe_8gaussians.png").is_file()
    # the reference job measured the plug-in metric's noise floor too
    assert "noise floor W2" in text and ", SW2 " in text


def test_records_name_the_plugin(run):
    import json

    record = json.loads((run.parents[1] / "results" / "train" / "8gaussians" / METHOD
                         / "seed0.json").read_text())
    assert record["settings"]["method"] == METHOD
    assert record["environment"]["plugins"] == {"sfbench-plugin-example": "0.1.0"}
