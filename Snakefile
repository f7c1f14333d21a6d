# sfbench pipeline: data -> train -> sampling sweeps -> evaluation -> report.
#
#   snakemake --profile profiles/default                               # default preset
#   snakemake --profile profiles/default --configfile config/smoke.yaml
#
# The job plan lives in the package (sfbench.pipeline: which models and jobs a
# preset has, their files, settings and flags); workflow/rules/ wires it into
# one rule per stage, each calling the package's CLI (python -m sfbench ...).
# docs/PIPELINE.md explains the layout, MLflow tracking and the DVC round trip.

from snakemake.utils import min_version

min_version("9.0")


if not config:

    configfile: "config/default.yaml"


include: "workflow/rules/common.smk"


report: "workflow/report/workflow.rst"  # the overview of `snakemake --report`


wildcard_constraints:
    dataset=NAME,
    method=NAME,
    seed=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onstart:
    # MLflow's SQLite store breaks when parallel jobs create it together.
    if not workflow.touch:
        from sfbench.tracking import ensure_tracking_store

        ensure_tracking_store()


rule all:
    default_target: True
    input:
        rules.report.output.result,
