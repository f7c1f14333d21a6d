"""The Snakemake workflow: lint, planned jobs per rule, config validation, profiles."""

from __future__ import annotations

import inspect

import pytest
import yaml
from pipeline_helpers import job_counts, load_preset, run_snakemake

from sfbench.pipeline import JobPlan


def expected_jobs(cfg: dict) -> dict[str, int]:
    """Jobs per rule the workflow must plan for a preset: the package's job plan."""
    return JobPlan(cfg).job_counts()


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
        (lambda c: c["sampling"]["solvers"].append("eulr"), "sampling.solvers[7]: 'eulr'"),
        (lambda c: c["sampling"].update(held_out_seeds=[12345]),
         "sampling.held_out_seeds: 12345 is the selection seed"),
        (lambda c: c["sampling"].update(native="yes"), "sampling.native: 'yes' is not of type"),
        (lambda c: c.update(methods=["cfm", "flowmatch"]), "methods[1]: 'flowmatch'"),
        (lambda c: c.update(datasets=["8gaussians", "mnist3d"]), "datasets[1]: 'mnist3d'"),
        (lambda c: c["sampling"]["adaptive"].update(rk45=[1e-3]), "sampling.adaptive"),
        (lambda c: c["evaluation"]["nll"].update(rtol="1e-5"), "evaluation.nll.rtol"),
        (lambda c: c["train"].pop("steps"), "train.steps: required setting is missing"),
        (lambda c: c.update(seeds=[0, -1]), "seeds[1]"),
        (lambda c: c["sampling"].update(grids=["uniform", "edmm"]), "sampling.grids[1]: 'edmm'"),
        (lambda c: c["images"].update(datasets=["moons"]), "images.datasets[0]: 'moons'"),
        (lambda c: c.update(datasets=["digits"]), "datasets[0]: 'digits'"),
        (lambda c: c["images"].pop("classifier"), "images.classifier: required setting"),
        (lambda c: c["images"]["evaluation"]["nll"].update(divergence="exactly"),
         "images.evaluation.nll.divergence"),
        (lambda c: c["images"]["train"]["network"].update(kind="resnet")
         if "network" in c["images"]["train"]
         else c["images"]["train"].update(network={"kind": "resnet"}),
         "images.train.network.kind"),
        (lambda c: c["images"]["data"].update(data_dir={"mnist": "/x"}),
         "images.data.data_dir"),
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

    from sfbench.models.unet import UNet
    from sfbench.train import TrainConfig

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    keys = set(schema["$defs"]["train_settings"]["properties"])
    assert keys <= {f.name for f in fields(TrainConfig)} - {"method", "seed"}
    network = set(schema["$defs"]["train_settings"]["properties"]["network"]["properties"])
    unet = set(inspect.signature(UNet).parameters) - {"shape"}
    assert network <= set(TrainConfig().network) | unet | {"kind"}


def test_dry_run_plans_the_classifier_and_reference_once_for_digits(workdir):
    """Every digits model's sweep reads one classifier and one cached reference."""
    proc = run_snakemake(workdir, "-n", "-p", "--configfile", "config/default.yaml")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count(" classifier --dataset digits") == 1
    assert proc.stdout.count(" reference --dataset digits") == 1
    image_sweeps = [line for line in proc.stdout.splitlines()
                    if " sweep --model results/models/digits/" in line]
    assert len(image_sweeps) == len(load_preset("default")["images"]["methods"])
    for line in image_sweeps:
        assert "--classifier results/models/fid_classifier/digits.pt" in line
        assert "--fid-features results/reference/digits_features.npz" in line


def test_jobs_get_the_experiment_and_config_hash_as_global_flags(workdir):
    """The Snakefile passes both to every job on its command line, not through the
    environment; the hash is that of the preset as Snakemake read it."""
    from sfbench.provenance import config_hash

    proc = run_snakemake(workdir, "-n", "-p", "--configfile", "config/smoke.yaml")
    assert proc.returncode == 0, proc.stdout
    preset = load_preset("smoke")
    counts = JobPlan(preset).job_counts()
    commands = [line for line in proc.stdout.splitlines() if " -m sfbench " in line]
    # every job but the settings files and `all` runs sfbench
    assert len(commands) == counts["total"] - counts["job_config"] - counts["all"]
    flags = f" -m sfbench --mlflow-experiment sfbench-smoke --config-hash {config_hash(preset)} "
    assert all(flags in line for line in commands), commands[0]
