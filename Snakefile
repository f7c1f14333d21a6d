# sfbench pipeline: data -> train -> sampling sweeps -> evaluation -> report.
#
#   snakemake --profile profiles/default                               # default preset
#   snakemake --profile profiles/default --configfile config/smoke.yaml
#
# The rules live in workflow/rules/, one file per stage; each calls the
# package's CLI (python -m sfbench ...). docs/PIPELINE.md explains the layout,
# MLflow tracking and the DVC round trip.

from snakemake.utils import min_version

min_version("9.0")


if not config:
    configfile: "config/default.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/provenance.smk"


report: "workflow/report/workflow.rst"  # the overview of `snakemake --report`


validate_config(config)  # before any job: a wrong key, type or name stops here
# Inherited by every job (read by `sfbench` itself): the MLflow experiment of
# the preset, unless already set, and the config hash every run is tagged with.
os.environ.setdefault("SFBENCH_MLFLOW_EXPERIMENT", config["mlflow_experiment"])
os.environ.update(SFBENCH_CONFIG_HASH=config_hash(config))

wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    method=r"[A-Za-z0-9_]+",
    seed=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


if config.get("images"):  # the optional image part of the preset

    include: "workflow/rules/images.smk"


if config.get("reflow"):  # 2-RF and its one-step distillation, after the 1-RF models

    include: "workflow/rules/reflow.smk"


if config.get("decompose"):  # error decomposition against the oracle (Gaussian mixtures)

    include: "workflow/rules/decompose.smk"


onstart:
    # MLflow's SQLite store breaks when parallel jobs create it together.
    if not workflow.touch:
        from sfbench.tracking import ensure_tracking_store

        ensure_tracking_store()


rule all:
    default_target: True
    input:
        "results/report/report.html",
