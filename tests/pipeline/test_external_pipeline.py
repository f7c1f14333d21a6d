"""A preset with an external model, end to end: the exact rectified-flow velocity of
8gaussians, a plain PyTorch module declared by a spec file (examples/external-models), is
swept and evaluated beside a trained model, never trained, and reported as external."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from pipeline_helpers import REPO, copy_workflow, job_counts, load_preset, run_snakemake

from sfbench.pipeline import JobPlan

pytestmark = pytest.mark.slow

SPEC = "models/eight_gaussians_flow.yaml"


def _preset() -> dict:
    """The smoke preset cut to one trained model and one external one (about a minute)."""
    cfg = copy.deepcopy(load_preset("smoke"))
    for block in ("images", "reflow", "decompose"):
        cfg.pop(block)
    cfg.update(preset="external", methods=["rectified_flow"])
    cfg["train"].update(steps=100, checkpoint_every=100)
    cfg["sampling"].update(solvers=["euler", "heun"], native=False, steps=[2, 8],
                           trajectory={"solver": "heun", "steps": 8, "n_points": 50})
    cfg["external"] = [{"name": "exact_flow", "source": SPEC, "dataset": "8gaussians",
                        "kind": "torch"}]
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    repo = copy_workflow(tmp_path_factory.mktemp("external") / "repo")
    shutil.copytree(REPO / "examples" / "external-models", repo / "models")
    cfg = _preset()
    (repo / "config" / "external.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(repo, "--cores", "2", "--configfile", "config/external.yaml",
                         timeout=1200)
    assert proc.returncode == 0, proc.stdout[-8000:]
    return {"repo": repo, "cfg": cfg, "log": proc.stdout}


def test_every_planned_job_ran_and_the_external_model_was_not_trained(run):
    counts = job_counts(run["log"])
    assert counts == JobPlan(run["cfg"]).job_counts()
    assert counts["train"] == 1 and counts["sweep"] == 2
    assert not (run["repo"] / "results" / "models" / "8gaussians" / "exact_flow").exists()


def test_the_report_compares_the_external_model_and_marks_it(run):
    report = run["repo"] / "results" / "report"
    summary = pd.read_csv(report / "tables" / "summary.csv").set_index("method")
    assert set(summary.index) == {"rectified_flow", "exact_flow"}
    # the exact flow beats a model trained for 100 steps, which only approximates it
    assert summary.loc["exact_flow", "w2_mean"] < summary.loc["rectified_flow", "w2_mean"]
    cells = pd.read_csv(report / "tables" / "cells.csv")
    assert set(cells.loc[cells["external"], "method"]) == {"exact_flow"}
    # every cell of the trained model's sweep exists for the external one too
    by_method = cells.groupby("method")["key"].apply(frozenset)
    assert by_method["exact_flow"] == by_method["rectified_flow"]
    text = (report / "report.md").read_text()
    assert "exact_flow (external)" in text and "| exact_flow |" not in text


def test_the_external_flow_s_nll_is_the_mixture_s_exact_nll(run):
    """The probability-flow NLL of the exact velocity is the data's true NLL (up to the
    ODE tolerance): the external model's time convention and path were read correctly."""
    from sfbench.data import get_dataset

    record = yaml.safe_load((run["repo"] / "results" / "nll" / "8gaussians" / "exact_flow"
                             / "seed0.json").read_text())
    n = run["cfg"]["evaluation"]["nll"]["n_points"]
    test = np.load(run["repo"] / "resources" / "data" / "8gaussians.npz")["test"][:n]
    mixture = get_dataset("8gaussians").mixture
    exact = -mixture.log_prob(torch.as_tensor(test, dtype=torch.float64)).mean().item()
    assert record["result"]["nll_nats"] == pytest.approx(exact, abs=0.02)
    assert record["settings"]["model"]["external"] is True
