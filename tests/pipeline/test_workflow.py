"""The Snakemake workflow: lint, planned jobs per rule, config validation, profiles."""

from __future__ import annotations

import pytest
import yaml
from pipeline_helpers import job_counts, load_preset, run_snakemake


def expected_jobs(cfg: dict) -> dict[str, int]:
    """Jobs per rule the workflow must plan for a preset, computed from its config."""
    n_data, n_methods = len(cfg["datasets"]), len(cfg["methods"])
    n_models = n_data * n_methods * len(cfg["seeds"])
    return {
        "data": n_data,
        "reference": n_data,
        "train_config": n_methods,
        "train": n_models,
        "sweep": n_models,
        "nll": n_models,
        "report": 1,
        "all": 1,
        "total": 2 * n_data + n_methods + 3 * n_models + 2,
    }


def test_lint_is_clean(workdir):
    proc = run_snakemake(workdir, "--lint")
    assert proc.returncode == 0, proc.stdout
    assert "Congratulations, your workflow is in a good condition" in proc.stdout, proc.stdout


@pytest.mark.parametrize("preset", ["default", "smoke", "gpu"])
def test_dry_run_plans_the_expected_jobs_per_rule(workdir, preset):
    proc = run_snakemake(workdir, "-n", "--configfile", f"config/{preset}.yaml")
    assert proc.returncode == 0, proc.stdout
    assert job_counts(proc.stdout) == expected_jobs(load_preset(preset))


def test_default_preset_is_used_without_configfile(workdir):
    proc = run_snakemake(workdir, "-n")
    assert proc.returncode == 0, proc.stdout
    assert job_counts(proc.stdout) == expected_jobs(load_preset("default"))


def test_slurm_profile_dry_run_without_a_cluster(workdir):
    proc = run_snakemake(workdir, "--profile", "profiles/slurm", "-n")
    assert proc.returncode == 0, proc.stdout
    assert job_counts(proc.stdout)["train"] == expected_jobs(load_preset("default"))["train"]


def _bad_config(workdir, edit) -> str:
    cfg = load_preset("smoke")
    edit(cfg)
    path = workdir / "config" / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return "config/bad.yaml"


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["train"].update(learning_rate=0.1), "train.learning_rate: unknown key"),
        (lambda c: c.update(extra_section={}), "extra_section: unknown key"),
        (lambda c: c["data"].update(n_test="many"), "data.n_test: 'many' is not of type"),
        (lambda c: c["sampling"]["solvers"].append("eulr"), "sampling.solvers[6]: 'eulr'"),
        (lambda c: c.update(methods=["cfm", "flowmatch"]), "methods[1]: 'flowmatch'"),
        (lambda c: c.update(datasets=["8gaussians", "mnist3d"]), "datasets[1]: 'mnist3d'"),
        (lambda c: c["sampling"]["adaptive"].update(rk45=[1e-3]), "sampling.adaptive"),
        (lambda c: c["evaluation"]["nll"].update(rtol="1e-5"), "evaluation.nll.rtol"),
        (lambda c: c["train"].pop("steps"), "train.steps: required setting is missing"),
        (lambda c: c.update(seeds=[0, -1]), "seeds[1]"),
    ],
)
def test_invalid_config_stops_before_any_job_naming_the_field(workdir, edit, field):
    configfile = _bad_config(workdir, edit)
    proc = run_snakemake(workdir, "--cores", "1", "--configfile", configfile)
    assert proc.returncode != 0
    assert "invalid configuration (no job was started)" in proc.stdout, proc.stdout
    assert field in proc.stdout, proc.stdout
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def test_schema_train_settings_are_trainconfig_fields():
    """Every training key a preset may set is a field of sfbench.train.TrainConfig."""
    from dataclasses import fields

    from pipeline_helpers import REPO

    from sfbench.train import TrainConfig

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    keys = set(schema["$defs"]["train_settings"]["properties"])
    assert keys <= {f.name for f in fields(TrainConfig)} - {"method", "seed"}
    network = set(schema["$defs"]["train_settings"]["properties"]["network"]["properties"])
    assert network <= set(TrainConfig().network) | {"kind"}
