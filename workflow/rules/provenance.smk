# What a job's result depends on besides its data and parameters: the package
# source it runs and the versions of the libraries that shape its numbers.
# Functions only (no rules); docs/RELIABILITY.md explains the granularity.
#
#   input:  code=code_inputs("train")            # a changed module reruns the job (mtime)
#   params: env=environment_fingerprint()        # a changed library reruns it (params trigger)
#
# Granularity: a job depends on every module of the installed package that its
# command imports, directly or through other package modules, anywhere in the
# file (imports inside functions included), found statically from the import
# statements. Editing a solver reruns the sweeps (and what reads them), not
# the training; editing the report package reruns only the report. Module
# level, not function level: any edit of an imported module counts.

import ast
import functools
import hashlib
import importlib.metadata
import importlib.util
import platform
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The sfbench command each rule runs (`python -m sfbench <command>`).
RULE_COMMANDS = {
    "data": "data",
    "reference": "sweep",
    "train": "train",
    "sweep": "sweep",
    "nll": "evaluate",
    "report": "report",
    "classifier": "classifier",
    "image_reference": "sweep",
    "image_sweep": "sweep",
    "image_nll": "evaluate",
    "reflow_pairs": "reflow_pairs",
    "distill_pairs": "reflow_pairs",
    "train_paired": "train",
    "sweep_paired": "sweep",
    "decompose": "decompose",
}
# Every job enters through these; tracking only talks to MLflow and never
# changes a result file, so editing it reruns nothing.
ENTRY_MODULES = ("sfbench.__main__", "sfbench.cli")
NOT_RESULT_SHAPING = ("sfbench.tracking",)
# Libraries whose version can change a number (the rest only move bytes).
NUMERIC_PACKAGES = ("torch", "numpy", "scipy", "POT", "torchmetrics", "torchdiffeq",
                    "scikit-learn")


def _package_root() -> Path:
    """Directory of the sfbench package the jobs import (not necessarily under the workdir)."""
    spec = importlib.util.find_spec("sfbench")
    if spec is None or not spec.submodule_search_locations:
        raise WorkflowError("the sfbench package is not importable; pip install -e . first")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def _module_file(root: Path, name: str) -> Path | None:
    parts = name.split(".")[1:]
    for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set:
    """Names of the sfbench modules that ``path`` imports, wherever the import is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "sfbench")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "sfbench":
                names.add(node.module)
                # `from sfbench.eval import nll` imports the module sfbench.eval.nll
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@functools.cache
def _closure(command: str) -> tuple:
    root = _package_root()
    todo = [*ENTRY_MODULES, f"sfbench.commands.{command}"]
    seen, files = set(), set()
    while todo:
        name = todo.pop()
        if name in seen or name in NOT_RESULT_SHAPING:
            continue
        seen.add(name)
        # importing a.b.c runs the __init__ of a and a.b first
        todo.extend(".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1))
        path = _module_file(root, name)
        if path is None:  # a name imported from a module, not a module
            continue
        files.add(path)
        todo.extend(_imported_modules(path))
    return tuple(sorted(str(p) for p in files))


def code_inputs(rule_name: str) -> list:
    """The package source files the job of ``rule_name`` runs (absolute paths)."""
    if rule_name not in RULE_COMMANDS:
        raise WorkflowError(
            f"code_inputs: no command is known for {rule_name!r} (known: "
            f"{', '.join(RULE_COMMANDS)})"
        )
    return list(_closure(RULE_COMMANDS[rule_name]))


@functools.cache
def environment_fingerprint() -> str:
    """Short hash of the Python and numeric-library versions (a job parameter)."""
    versions = [f"python={platform.python_version()}", f"implementation={sys.implementation.name}"]
    for name in NUMERIC_PACKAGES:
        try:
            versions.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name}=absent")
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:12]
