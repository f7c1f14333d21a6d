# Configuration checks, the job grid and the helpers the rules share.
# Functions live here (not next to the rules), as `snakemake --lint` asks.

import copy
import json
import os
import re
import shlex
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from snakemake.exceptions import WorkflowError

SCHEMA_PATH = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"


def job_python() -> str:
    """The interpreter every job runs ``-m sfbench`` with.

    Snakemake's own interpreter: this file imports sfbench to plan the jobs
    (code_inputs, the registries), so that interpreter has the package and the
    versions the environment fingerprint names. A bare ``python`` would be
    whatever comes first on PATH (the system's, on a new machine). On a SLURM
    node the job is planned again by the same interpreter (shared file
    system), so the path holds there too. With ``--sdm conda`` the job runs
    in the rule's conda environment, whose ``python`` is first on its PATH.
    ``$SFBENCH_PYTHON`` overrides both (a cluster whose nodes see the
    environment under another path).
    """
    chosen = os.environ.get("SFBENCH_PYTHON")
    if chosen:
        return chosen
    from snakemake.settings.types import DeploymentMethod

    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        return "python"
    return sys.executable


# Every rule's `params.sfbench`. As a param it is a rerun trigger: in one working
# directory, jobs run by another interpreter (another environment) rerun. A clone
# has no record of earlier params, so a `dvc pull` into another path reruns nothing.
SFBENCH = f"{shlex.quote(job_python())} -m sfbench"


def _registries():
    """Valid names from the package registries (one list per config field)."""
    from sfbench.data import DATASETS
    from sfbench.methods import METHODS
    from sfbench.solvers import GRIDS
    from sfbench.solvers.registry import SOLVERS

    fixed = sorted(name for name, spec in SOLVERS.items() if not spec.adaptive)
    adaptive = sorted(name for name, spec in SOLVERS.items() if spec.adaptive)
    vectors = sorted(name for name, d in DATASETS.items() if d.levels is None)
    images = sorted(name for name, d in DATASETS.items() if d.levels is not None)
    # the datasets with a closed-form oracle (the error decomposition needs one)
    mixtures = sorted(name for name, d in DATASETS.items() if getattr(d, "mixture", None))
    return {"datasets": vectors, "image_datasets": images, "mixtures": mixtures,
            "methods": sorted(METHODS),
            "fixed": fixed, "adaptive": adaptive, "grids": sorted(GRIDS)}


def _schema_with_names():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    names = _registries()
    schema["$defs"]["grids"]["items"] = {"enum": names["grids"]}
    schema["$defs"]["adaptive"]["propertyNames"] = {"enum": names["adaptive"]}
    props = schema["properties"]
    images = props["images"]["properties"]
    for block, datasets in ((props, "datasets"), (images, "image_datasets")):
        block["datasets"]["items"] = {"enum": names[datasets]}
        block["methods"]["items"] = {"enum": names["methods"]}
        block["train_overrides"]["propertyNames"] = {"enum": names["methods"]}
        block["sampling"]["properties"]["solvers"]["items"] = {"enum": names["fixed"]}
    images["data"]["properties"]["data_dir"]["propertyNames"] = {"enum": names["image_datasets"]}
    props["sampling"]["properties"]["trajectory"]["properties"]["solver"] = {
        "enum": names["fixed"]
    }
    props["report"]["properties"]["quality_datasets"]["items"] = {"enum": names["datasets"]}
    reflow, decompose = props["reflow"]["properties"], props["decompose"]["properties"]
    reflow["datasets"]["items"] = {"enum": names["datasets"]}
    reflow["solver"] = {"enum": names["fixed"]}
    reflow["sweep_solvers"]["items"] = {"enum": names["fixed"]}
    decompose["datasets"]["items"] = {"enum": names["mixtures"]}
    decompose["solvers"]["items"] = {"enum": names["fixed"]}
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
        problems += _image_problems(cfg.get("images"))
        problems += _stage_problems(cfg)
    if problems:
        raise WorkflowError(
            "invalid configuration (no job was started):\n  " + "\n  ".join(problems)
        )


def _image_problems(images) -> list:
    """Checks of the images block the schema cannot express."""
    if not images:
        return []
    problems = []
    sampling = images["sampling"]
    if not sampling["solvers"] and not sampling["adaptive"]:
        problems.append("images.sampling: no solver to run (solvers and adaptive are both empty)")
    if "digits" in images["datasets"] and "classifier" not in images:
        problems.append(
            "images.classifier: required setting is missing (the digits FID needs the "
            "classifier the pipeline trains; `classifier: {}` takes its defaults)"
        )
    return problems


def _stage_problems(cfg) -> list:
    """The reflow and decompose blocks must name datasets and seeds the preset trains."""
    problems = []
    for name in ("reflow", "decompose"):
        block = cfg.get(name)
        if not block:
            continue
        for key in ("datasets", "seeds"):
            missing = [v for v in block[key] if v not in cfg[key]]
            if missing:
                problems.append(f"{name}.{key}: {', '.join(map(str, missing))} not in {key}")
    if cfg.get("reflow") and "rectified_flow" not in cfg["methods"]:
        problems.append("reflow: needs rectified_flow in methods (the 1-RF model it starts from)")
    return problems


def reflow_models() -> list:
    """(dataset, method, seed) of the reflow stage's models: 2-RF and its distillation."""
    block = config.get("reflow") or {}
    return [(d, m, s) for d in block.get("datasets", []) for m in PAIRED
            for s in block.get("seeds", [])]


def decompose_paths() -> list:
    """One decomposition per model of the decompose block (its datasets and seeds)."""
    block = config.get("decompose") or {}
    paired = set(reflow_models())
    return [
        f"results/decompose/{d}/{m}/seed{s}.json"
        for d in block.get("datasets", [])
        for m in config["methods"] + list(PAIRED)
        for s in block.get("seeds", [])
        if m not in PAIRED or (d, m, s) in paired
    ]


PAIRED = ("reflow", "distill")  # the reflow stage's methods


def config_hash(cfg) -> str:
    """sha256 of the canonical JSON of the validated config (tagged on every MLflow run,
    stamped on the report, compared by `sfbench report --check`)."""
    from sfbench.provenance import config_hash as canonical_hash

    return canonical_hash(cfg)


def images_config() -> dict:
    """The images block of the preset ({} when the preset has none)."""
    return config.get("images") or {}


def image_datasets() -> list:
    return images_config().get("datasets", [])


def is_image(dataset) -> bool:
    return dataset in image_datasets()


def block_of(dataset) -> dict:
    """The part of the preset that sets up ``dataset``: the images block or the top level."""
    return images_config() if is_image(dataset) else config


def dataset_regex(datasets) -> str:
    """A wildcard constraint matching exactly these dataset names (rules of one kind)."""
    return "|".join(map(re.escape, datasets)) or "(?!)"


def data_dir_flag(dataset) -> str:
    """``--data-dir DIR`` where the images block names a directory for ``dataset``."""
    path = images_config().get("data", {}).get("data_dir", {}).get(dataset) if is_image(
        dataset
    ) else None
    return f"--data-dir {shlex.quote(path)}" if path else ""


def train_settings(method, block=None) -> dict:
    """The TrainConfig fields for ``method``: ``train`` updated by ``train_overrides``.

    ``block`` is the part of the preset to read (default: the top level, the
    2-D comparison; the images block for image models).
    """
    block = config if block is None else block
    settings = copy.deepcopy(block["train"])
    if method in PAIRED:  # the reflow stage's models: `train` changed by reflow.train
        override = copy.deepcopy((config.get("reflow") or {}).get("train", {}))
    else:
        override = copy.deepcopy(block.get("train_overrides", {}).get(method, {}))
    network = {**settings.get("network", {}), **override.pop("network", {})}
    settings.update(override)
    if network:
        settings["network"] = network
    return settings


def models(block=None):
    """(dataset, method, seed) of every model of ``block`` (default: the 2-D comparison)."""
    block = config if block is None else block
    if not block:
        return []
    return [(d, m, s) for d in block["datasets"] for m in block["methods"] for s in block["seeds"]]


def model_paths(pattern, block=None) -> list:
    return [pattern.format(dataset=d, method=m, seed=s) for d, m, s in models(block)]


def all_model_paths(pattern, paired=True) -> list:
    """``pattern`` for every model of the preset: 2-D, image and (``paired``) reflow."""
    extra = [pattern.format(dataset=d, method=m, seed=s) for d, m, s in reflow_models()]
    return model_paths(pattern) + model_paths(pattern, images_config()) + (extra if paired else [])


def sweep_cells(sampling=None) -> int:
    """Number of (solver, grid, steps or tolerance) cells each model is sampled at."""
    sampling = config["sampling"] if sampling is None else sampling
    return len(sampling["solvers"]) * len(sampling.get("grids", ["uniform"])) * len(
        sampling["steps"]
    ) + sum(len(tols) for tols in sampling["adaptive"].values())


def adaptive_flags(sampling=None) -> str:
    """``--adaptive dopri5:1e-2,1e-3`` for each adaptive solver."""
    sampling = config["sampling"] if sampling is None else sampling
    return " ".join(
        f"--adaptive {name}:{','.join(repr(float(t)) for t in tols)}"
        for name, tols in sorted(sampling["adaptive"].items())
    )


def straightness_flag(sampling=None) -> str:
    """``--straightness N_POINTS:STEPS`` when the sampling block asks for it, else nothing."""
    sampling = config["sampling"] if sampling is None else sampling
    spec = sampling.get("straightness")
    return f"--straightness {spec['n_points']}:{spec['steps']}" if spec else ""


def grid_flags(sampling=None) -> str:
    """``--grids uniform edm``: the time grids of the fixed-step solvers."""
    sampling = config["sampling"] if sampling is None else sampling
    return "--grids " + " ".join(sampling.get("grids", ["uniform"]))


def job_key(stage, wildcards) -> str:
    """Stable MLflow identity of a job: stage plus its wildcards."""
    parts = [stage] + [str(wildcards[k]) for k in ("dataset", "method") if k in wildcards.keys()]
    if "seed" in wildcards.keys():
        parts.append(f"seed{wildcards.seed}")
    return "/".join(parts)


def classifier_paths(suffix) -> list:
    """The digits classifier the images block needs (none without digits)."""
    if "digits" not in image_datasets():
        return []
    return [f"results/{'models' if suffix == 'pt' else 'train'}/fid_classifier/digits.{suffix}"]


def report_inputs(wildcards=None) -> dict:
    datasets = config["datasets"] + image_datasets()
    return {
        "data": expand("results/data/{dataset}.json", dataset=datasets),
        "reference": expand("results/reference/{dataset}.json", dataset=datasets),
        "classifier": classifier_paths("json"),
        "train": all_model_paths("results/train/{dataset}/{method}/seed{seed}.json"),
        "sweep": all_model_paths("results/sweep/{dataset}/{method}/seed{seed}.json"),
        # a distilled one-step map has no ODE, hence no likelihood
        "nll": [p for p in all_model_paths("results/nll/{dataset}/{method}/seed{seed}.json")
                if "/distill/" not in p],
        "decompose": decompose_paths(),
    }


def report_tables() -> list:
    names = ["summary", "headline", "cells", "best_by_solver", "quality"]
    if image_datasets():
        names += ["baseline", "bits"]
    if decompose_paths():
        names += ["decomposition", "flows"]
    methods = list(dict.fromkeys(config["methods"] + images_config().get("methods", [])
                                 + [m for _, m, _ in reflow_models()]))
    return (
        [f"results/report/tables/{name}.csv" for name in names]
        + expand("results/report/tables/summary_{dataset}.csv",
                 dataset=config["datasets"] + image_datasets())
        + expand("results/report/tables/grid_{method}.csv", method=methods)
    )


def report_figures() -> list:
    """The report's figures: metric-vs-NFE plots, samples and trajectories per dataset.

    Image datasets: FID and KID against NFE, and one sample grid per method.
    """
    names = ["w2_vs_nfe", "mmd_vs_nfe", "fid_vs_nfe", "samples", "trajectories"]
    figures = expand(
        "results/report/figures/{name}_{dataset}.png", name=names, dataset=config["datasets"]
    )
    images = images_config()
    if images:
        figures += expand("results/report/figures/{name}_vs_nfe_{dataset}.png",
                          name=["fid", "kid"], dataset=images["datasets"])
        figures += expand("results/report/figures/samples_{dataset}_{method}.png",
                          dataset=images["datasets"], method=images["methods"])
    if decompose_paths():
        figures += expand("results/report/figures/decomposition_{dataset}.png",
                          dataset=config["decompose"]["datasets"])
    return figures


def classifier_input(wildcards) -> dict:
    """The digits classifier as a job input where the dataset's FID uses it."""
    if wildcards.dataset != "digits":
        return {}
    return {"classifier": classifier_paths("pt")[0]}


def classifier_flag(wildcards) -> str:
    paths = classifier_input(wildcards)
    return f"--classifier {paths['classifier']}" if paths else ""


def fid_flags() -> str:
    """KID subsets and the feature extractor's device, from images.evaluation.fid."""
    fid = images_config()["evaluation"].get("fid", {})
    return (
        f"--kid-subsets {fid.get('kid_subsets', 100)}"
        f" --kid-subset-size {fid.get('kid_subset_size', 1000)}"
        f" --fid-device {fid.get('device', 'cpu')}"
    )
