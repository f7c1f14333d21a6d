# Binds the package's job plan (sfbench.pipeline) to Snakemake: the plan says
# which jobs exist, their files, settings and flags; the rules only wire them.

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod

try:
    from sfbench.pipeline import InvalidConfig, JobPlan, validate_config
except ImportError:
    raise WorkflowError(
        f"the sfbench package is not importable by Snakemake's interpreter ({sys.executable});"
        " run `bash scripts/install.sh` and start `.venv/bin/snakemake`"
    ) from None
from sfbench.eval.metrics import IMAGE, VECTOR
from sfbench.pipeline import commands as cmd, paths
from sfbench.pipeline.jobs import GlobalFlags, code_fingerprint, environment_fingerprint
from sfbench.pipeline.jobs import Launcher, sfbench_command
from sfbench.pipeline.settings import config_text, job_config

try:  # before any job: a wrong key, type or name stops here
    validate_config(config, Path(workflow.basedir, "workflow/schemas/config.schema.yaml"))
except InvalidConfig as error:
    raise WorkflowError(str(error)) from None

PLAN = JobPlan(config)
NAME = r"[A-Za-z0-9_]+"  # a dataset or method name in a path
CONDA = "../envs/sfbench.yaml"
CONDA_RUN = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method


def one_of(names) -> str:
    """A wildcard constraint matching exactly ``names`` (a rule variant's datasets or methods)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def per_dataset(function):
    return lambda w: function(PLAN, w.dataset)


def per_model(function):
    return lambda w: function(PLAN, PLAN.model(w.dataset, w.method, w.seed))


def with_inputs(function):
    """A flags function of a dataset or model that names input files, given the paths
    Snakemake hands the job (local copies under a default storage provider)."""
    def flags(wildcards, input):
        inputs = dict(input.items())
        if "method" in wildcards.keys():
            return function(PLAN, PLAN.model(wildcards.dataset, wildcards.method,
                                             wildcards.seed), inputs)
        return function(PLAN, wildcards.dataset, inputs)
    return flags


def report_job_flags(wildcards, output):
    """The report's flags, with the directory Snakemake wants it in (under a default
    storage provider, the local copy of results/report)."""
    return cmd.report_flags(PLAN, Path(output.result).parent)


def output_flag(flag, name):
    """``flag <output.name>`` in a rule variant that has that output, else nothing."""
    return lambda w, output: f"{flag} {output[name]}" if name in output.keys() else ""


def train_launcher(wildcards, resources):
    """One process, or torchrun over the GPUs the job was given (sfbench.pipeline.jobs.Launcher)."""
    return Launcher(int(getattr(resources, "gpu", 0) or 0), CONDA_RUN)


def job_params(stage, flags="", parent=False) -> dict:
    """Every job's params: the interpreter, library versions and the code its command runs
    (rerun triggers), the global flags (not one: jobs.GlobalFlags), its flags and MLflow
    key (+ the model's)."""
    params = dict(env=environment_fingerprint(), code=code_fingerprint(stage),
                  sfbench=sfbench_command(CONDA_RUN),
                  globals=GlobalFlags(config), flags=flags,
                  key=lambda w: cmd.job_key(stage, w))
    return {**params, "parent": lambda w: cmd.job_key("train", w)} if parent else params
