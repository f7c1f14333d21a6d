# Configuration checks, the job grid and the helpers the rules share.
# Functions live here (not next to the rules), as `snakemake --lint` asks.

import copy
import hashlib
import json
import os
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from snakemake.exceptions import WorkflowError

SCHEMA_PATH = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"


def _registries():
    """Valid names from the package registries (one list per config field)."""
    from sfbench.data import DATASETS
    from sfbench.methods import METHODS
    from sfbench.solvers.registry import SOLVERS

    fixed = sorted(name for name, spec in SOLVERS.items() if not spec.adaptive)
    adaptive = sorted(name for name, spec in SOLVERS.items() if spec.adaptive)
    return sorted(DATASETS), sorted(METHODS), fixed, adaptive


def _schema_with_names():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    datasets, methods, fixed, adaptive = _registries()
    props = schema["properties"]
    props["datasets"]["items"] = {"enum": datasets}
    props["methods"]["items"] = {"enum": methods}
    props["train_overrides"]["propertyNames"] = {"enum": methods}
    sampling = props["sampling"]["properties"]
    sampling["solvers"]["items"] = {"enum": fixed}
    sampling["adaptive"]["propertyNames"] = {"enum": adaptive}
    sampling["trajectory"]["properties"]["solver"] = {"enum": fixed}
    props["report"]["properties"]["quality_datasets"]["items"] = {"enum": datasets}
    return schema


def _field(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(error) -> str:
    """One line naming the config field and what is wrong with it."""
    where = _field(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        return "; ".join(
            f"{prefix}{key}: unknown key (valid keys here: {', '.join(allowed)})" for key in extra
        )
    if error.validator == "required":
        missing = error.message.split("'")[1]
        prefix = f"{where}." if error.absolute_path else ""
        return f"{prefix}{missing}: required setting is missing"
    if error.validator == "enum":
        valid = ", ".join(map(str, error.validator_value))
        return f"{where}: {error.instance!r} is not a valid name; valid: {valid}"
    if error.validator == "propertyNames":
        return f"{where}: {error.message}"
    message = f"{where}: {error.message}"
    if error.validator == "type" and isinstance(error.instance, str):
        try:
            float(error.instance)
            message += " (YAML reads 1e-5 as text; write 1.0e-5)"
        except ValueError:
            pass
    return message


def validate_config(cfg) -> None:
    """Stop before any job when the config does not match the schema or the registries."""
    validator = Draft202012Validator(_schema_with_names())
    problems = [_describe(e) for e in sorted(validator.iter_errors(cfg), key=lambda e: e.json_path)]
    if not problems:
        missing = set(cfg["report"]["quality_datasets"]) - set(cfg["datasets"])
        if missing:
            problems.append(
                f"report.quality_datasets: {', '.join(sorted(missing))} not in datasets"
            )
        if cfg["sampling"]["trajectory"]["solver"] not in cfg["sampling"]["solvers"]:
            problems.append("sampling.trajectory.solver: must be one of sampling.solvers")
        if cfg["sampling"]["trajectory"]["steps"] not in cfg["sampling"]["steps"]:
            problems.append("sampling.trajectory.steps: must be one of sampling.steps")
        if not cfg["sampling"]["solvers"] and not cfg["sampling"]["adaptive"]:
            problems.append("sampling: no solver to run (solvers and adaptive are both empty)")
    if problems:
        raise WorkflowError(
            "invalid configuration (no job was started):\n  " + "\n  ".join(problems)
        )


def config_hash(cfg) -> str:
    """sha256 of the canonical JSON of the validated config (tagged on every MLflow run)."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def train_settings(method) -> dict:
    """The TrainConfig fields for ``method``: ``train`` updated by ``train_overrides``."""
    settings = copy.deepcopy(config["train"])
    override = copy.deepcopy(config.get("train_overrides", {}).get(method, {}))
    network = {**settings.get("network", {}), **override.pop("network", {})}
    settings.update(override)
    if network:
        settings["network"] = network
    return settings


def models():
    """(dataset, method, seed) of every model the preset trains."""
    return [
        (d, m, s) for d in config["datasets"] for m in config["methods"] for s in config["seeds"]
    ]


def model_paths(pattern) -> list:
    return [pattern.format(dataset=d, method=m, seed=s) for d, m, s in models()]


def sweep_cells() -> int:
    """Number of (solver, steps or tolerance) cells each model is sampled at."""
    sampling = config["sampling"]
    return len(sampling["solvers"]) * len(sampling["steps"]) + sum(
        len(tols) for tols in sampling["adaptive"].values()
    )


def adaptive_flags() -> str:
    """``--adaptive dopri5:1e-2,1e-3`` for each adaptive solver."""
    return " ".join(
        f"--adaptive {name}:{','.join(repr(float(t)) for t in tols)}"
        for name, tols in sorted(config["sampling"]["adaptive"].items())
    )


def job_key(stage, wildcards) -> str:
    """Stable MLflow identity of a job: stage plus its wildcards."""
    parts = [stage] + [str(wildcards[k]) for k in ("dataset", "method") if k in wildcards.keys()]
    if "seed" in wildcards.keys():
        parts.append(f"seed{wildcards.seed}")
    return "/".join(parts)


def report_inputs(wildcards=None) -> dict:
    return {
        "data": expand("results/data/{dataset}.json", dataset=config["datasets"]),
        "reference": expand("results/reference/{dataset}.json", dataset=config["datasets"]),
        "train": model_paths("results/train/{dataset}/{method}/seed{seed}.json"),
        "sweep": model_paths("results/sweep/{dataset}/{method}/seed{seed}.json"),
        "nll": model_paths("results/nll/{dataset}/{method}/seed{seed}.json"),
    }


def report_tables() -> list:
    return (
        [
            f"results/report/tables/{name}.csv"
            for name in ("summary", "cells", "best_by_solver", "quality")
        ]
        + expand("results/report/tables/summary_{dataset}.csv", dataset=config["datasets"])
        + expand("results/report/tables/grid_{method}.csv", method=config["methods"])
    )


def report_figures() -> list:
    """The report's figures: metric-vs-NFE plots, samples and trajectories per dataset."""
    names = ["w2_vs_nfe", "mmd_vs_nfe", "fid_vs_nfe", "samples", "trajectories"]
    return expand(
        "results/report/figures/{name}_{dataset}.png", name=names, dataset=config["datasets"]
    )
