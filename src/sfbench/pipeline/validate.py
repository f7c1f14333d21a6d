"""Checks of a preset before any job: the JSON schema, the registries, cross-field rules.

Every problem is one line naming the config field (``sampling.solvers[6]:
'eulr' is not a valid name; valid: ...``); all are reported together, so
one run of the workflow lists everything to fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from sfbench.pipeline import registries

#: The schema's registry placeholders ($defs) and the registry list each takes.
NAME_DEFS = {
    "dataset_name": "datasets",
    "image_dataset_name": "image_datasets",
    "mixture_name": "mixtures",
    "method_name": "methods",
    "fixed_solver_name": "fixed_solvers",
    "adaptive_solver_name": "adaptive_solvers",
    "grid_name": "grids",
    "network_name": "networks",
}


class InvalidConfig(ValueError):
    """A preset the workflow refuses; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration (no job was started):\n  "
                         + "\n  ".join(problems))


def schema_with_names(schema_path: str | os.PathLike) -> dict:
    """The schema with every ``*_name`` placeholder replaced by the registry's names."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    names = registries.names()
    for placeholder, registry in NAME_DEFS.items():
        schema["$defs"][placeholder] = {"enum": names[registry]}
    _open_plugin_networks(schema, registries.plugin_names("networks"))
    return schema


def _open_plugin_networks(schema: dict, kinds: list[str]) -> None:
    """A plug-in network takes arguments the schema cannot list: with its kind, a
    ``network`` entry may hold any key (its class rejects a wrong one when the model is
    built); the built-in kinds keep the closed list of MLP and U-Net arguments."""
    if not kinds:
        return
    settings = schema["$defs"]["train_settings"]["properties"]
    settings["network"] = {
        "if": {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": kinds}}},
        "then": {"type": "object"},
        "else": settings["network"],
    }


def _field(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error) -> str:
    """One line naming the config field and what is wrong with it."""
    where = _field(error.absolute_path)
    prefix = f"{where}." if error.absolute_path else ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return "; ".join(
            f"{prefix}{key}: unknown key (valid keys here: {', '.join(allowed)})" for key in extra
        )
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{prefix}{missing}: required setting is missing"
    if error.validator == "enum":
        valid = ", ".join(map(str, error.validator_value))
        return f"{where}: {error.instance!r} is not a valid name; valid: {valid}"
    message = f"{where}: {error.message}"
    if error.validator == "type" and isinstance(error.instance, str):
        try:
            float(error.instance)
            message += " (YAML reads 1e-5 as text; write 1.0e-5)"
        except ValueError:
            pass
    return message


def schema_problems(cfg: dict, schema_path: str | os.PathLike) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema_with_names(schema_path))
    return [describe(e) for e in sorted(validator.iter_errors(cfg), key=lambda e: e.json_path)]


def _sampling_problems(sampling: dict, where: str) -> list[str]:
    problems = []
    if not sampling["solvers"] and not sampling["adaptive"]:
        problems.append(f"{where}: no solver to run (solvers and adaptive are both empty)")
    if sampling["seed"] in sampling.get("held_out_seeds", []):
        problems.append(f"{where}.held_out_seeds: {sampling['seed']} is the selection seed "
                        f"({where}.seed); held-out seeds must be other draws")
    return problems


def rule_problems(cfg: dict) -> list[str]:
    """Checks across fields that the schema cannot express (on a schema-valid preset)."""
    problems = []
    missing = set(cfg["report"]["quality_datasets"]) - set(cfg["datasets"])
    if missing:
        problems.append(f"report.quality_datasets: {', '.join(sorted(missing))} not in datasets")
    trajectory, sampling = cfg["sampling"]["trajectory"], cfg["sampling"]
    if trajectory["solver"] not in sampling["solvers"]:
        problems.append("sampling.trajectory.solver: must be one of sampling.solvers")
    if trajectory["steps"] not in sampling["steps"]:
        problems.append("sampling.trajectory.steps: must be one of sampling.steps")
    problems += _sampling_problems(sampling, "sampling")
    images = cfg.get("images")
    if images:
        problems += _sampling_problems(images["sampling"], "images.sampling")
        trained = [d for d in images["datasets"] if registries.needs_classifier(d)]
        if trained and "classifier" not in images:
            problems.append(
                f"images.classifier: required setting is missing (the FID of "
                f"{', '.join(trained)} needs the classifier the pipeline trains; "
                "`classifier: {}` takes its defaults)"
            )
    for name in ("reflow", "decompose"):  # stages on models the preset trains
        for key in ("datasets", "seeds"):
            absent = [v for v in (cfg.get(name) or {}).get(key, []) if v not in cfg[key]]
            if absent:
                problems.append(f"{name}.{key}: {', '.join(map(str, absent))} not in {key}")
    problems += _external_problems(cfg)
    if cfg.get("reflow"):
        from sfbench.pipeline.plan import REFLOW_CHAIN

        if REFLOW_CHAIN[0] not in cfg["methods"]:
            problems.append(f"reflow: needs {REFLOW_CHAIN[0]} in methods "
                            "(the 1-RF model it starts from)")
    return problems


def _external_problems(cfg: dict) -> list[str]:
    """An external model needs a dataset the preset makes, a name of its own and a source
    that exists (and is of the declared kind)."""
    from sfbench.methods import METHODS, PAIRED_METHODS

    problems, seen = [], set()
    datasets = cfg["datasets"] + (cfg.get("images") or {}).get("datasets", [])
    taken = set(METHODS) | set(PAIRED_METHODS)
    for i, entry in enumerate(cfg.get("external") or []):
        where, name, source = f"external[{i}]", entry["name"], Path(entry["source"])
        if entry["dataset"] not in datasets:
            problems.append(f"{where}.dataset: {entry['dataset']!r} is not a dataset of this "
                            f"preset (datasets or images.datasets: {', '.join(datasets)})")
        if name in taken or name in seen:
            problems.append(f"{where}.name: {name!r} is already the name of a method or of "
                            "another external model")
        seen.add(name)
        if not source.exists():
            problems.append(f"{where}.source: {source} does not exist (paths are relative to "
                            "the directory Snakemake runs in)")
        elif entry["kind"] == "diffusers" and not source.is_dir():
            problems.append(f"{where}.source: a diffusers model is a directory "
                            f"(save_pretrained); {source} is a file")
        elif entry["kind"] == "torch" and not source.is_file():
            problems.append(f"{where}.source: a torch model is declared by a spec file "
                            f"(.yaml or .json); {source} is not a file")
        elif source.is_file():
            problems += _spec_problems(where, source, entry["kind"])
    return problems


def _spec_problems(where: str, source: Path, kind: str) -> list[str]:
    """A spec file's own problems, before any job (its network's code is not run here)."""
    from sfbench.errors import ExternalModelError
    from sfbench.external.spec import read_spec

    try:
        spec = read_spec(source)
    except ExternalModelError as error:
        return [f"{where}.source: {error}"]
    if spec.kind != kind:
        return [f"{where}.kind: {kind!r}, but {source} declares kind {spec.kind!r}"]
    return []


def config_problems(cfg: dict, schema_path: str | os.PathLike) -> list[str]:
    """Every problem of a preset ([] for a valid one)."""
    return schema_problems(cfg, schema_path) or rule_problems(cfg)


def validate_config(cfg: dict, schema_path: str | os.PathLike) -> None:
    """Raise :class:`InvalidConfig` listing every problem of ``cfg``."""
    problems = config_problems(cfg, schema_path)
    if problems:
        raise InvalidConfig(problems)
