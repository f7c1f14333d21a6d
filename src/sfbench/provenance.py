"""What a result depends on besides its inputs: source, preset, libraries, machine.

Two readers:

- the workflow (through :mod:`sfbench.pipeline.jobs`) makes every job depend on
  the package modules its command runs (:func:`command_sources`) and on the
  versions of the libraries that shape numbers (:func:`environment_fingerprint`),
  so that editing a solver reruns the sweeps and nothing else;
- the report stamps its fingerprints (:func:`stamp`) into
  ``provenance.json``, so that ``sfbench report --check`` can say whether a
  committed report is stale for the code and preset of a checkout
  (:func:`stale`).

The code fingerprint is per file: a stale report names the files that changed.
It covers the modules some command runs, found statically from the import
statements (imports inside functions included), except those that never
change a result file (MLflow tracking).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

import sfbench
from sfbench import plugins

# Every command enters through these.
ENTRY_MODULES = ("sfbench.__main__", "sfbench.cli")
# Tracking only talks to MLflow and never changes a result file.
NOT_RESULT_SHAPING = ("sfbench.tracking",)
# Libraries whose version can change a number (the rest only move bytes).
NUMERIC_PACKAGES = ("torch", "numpy", "scipy", "POT", "torchmetrics", "torchdiffeq",
                    "scikit-learn")
PROVENANCE_FILE = "provenance.json"


def package_root() -> Path:
    """Directory of the sfbench package this interpreter imports."""
    return Path(sfbench.__file__).resolve().parent


def _module_file(root: Path, name: str) -> Path | None:
    parts = name.split(".")[1:]
    for candidate in (root.joinpath(*parts).with_suffix(".py"),
                      root.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    """Names of the sfbench modules that ``path`` imports, wherever the import is."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "sfbench")
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and node.module.split(".")[0] == "sfbench"):
            names.add(node.module)
            # `from sfbench.eval import nll` imports the module sfbench.eval.nll
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@functools.cache
def command_sources(command: str) -> tuple[str, ...]:
    """Absolute paths of the package modules ``sfbench <command>`` can run."""
    root = package_root()
    todo = [*ENTRY_MODULES, f"sfbench.commands.{command.replace('-', '_')}"]
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


def all_commands() -> list[str]:
    """Every command of the CLI (the pipeline runs most of them)."""
    from sfbench.cli import COMMANDS

    return list(COMMANDS)


def code_fingerprint(commands: list[str] | None = None) -> dict[str, str]:
    """sha256 of every module the ``commands`` (default: all) run, by path in the package."""
    root = package_root()
    files = sorted({f for c in (commands or all_commands()) for f in command_sources(c)})
    return {
        Path(f).relative_to(root).as_posix(): hashlib.sha256(Path(f).read_bytes()).hexdigest()
        for f in files
    }


def config_hash(cfg: dict) -> str:
    """sha256 of the canonical JSON of a preset (tagged on every MLflow run)."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Python and the numeric libraries, from the installed metadata (no import)."""
    versions = {"python": platform.python_version(), "implementation": sys.implementation.name}
    for name in NUMERIC_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    # Installed plug-ins (sfbench.plugins): a new version reruns the jobs, as a new torch does.
    versions.update({f"plugin {dist}": v for dist, v in plugins.distributions().items()})
    return versions


def environment_fingerprint() -> str:
    """Short hash of :func:`library_versions` (a job parameter of the workflow)."""
    text = "\n".join(f"{k}={v}" for k, v in library_versions().items())
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cpu_model() -> str:
    """The CPU's model name (``platform.processor()`` is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The machine a report was built on (no host name)."""
    import torch

    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "os": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def stamp(preset: str, config_hash: str | None = None) -> dict:
    """Everything ``sfbench report --check`` compares, plus where the report came from.

    ``config_hash``: the one the workflow computed for this run (the global
    ``--config-hash`` flag of the report job); outside the workflow it is unknown.
    """
    from sfbench.tracking import git_state

    git = git_state()
    return {
        "preset": preset,
        "config_hash": config_hash or "unknown",
        "git_commit": git.get("git_commit", "unknown"),
        "git_dirty": git.get("git_dirty", "unknown") == "true",
        "machine": machine(),
        "libraries": library_versions(),
        "code": code_fingerprint(),
    }


def load_preset(path: str | os.PathLike) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def stale(recorded: dict, preset_file: str | os.PathLike) -> list[str]:
    """Why a report stamped ``recorded`` is stale for this checkout ([] when it is fresh).

    Stale: the preset file's hash or any code file differs. Library versions
    are reported by the caller as a note: another machine's versions do not
    make a committed report wrong, only not reproduced bit for bit.
    """
    reasons = []
    current = config_hash(load_preset(preset_file))
    if recorded.get("config_hash") != current:
        reasons.append(f"preset {preset_file}: hash {current}, the report was built with "
                       f"{recorded.get('config_hash')}")
    now, then = code_fingerprint(), recorded.get("code", {})
    for name in sorted(set(now) | set(then)):
        if name not in then:
            reasons.append(f"code: {name} is new since the report")
        elif name not in now:
            reasons.append(f"code: {name} was removed since the report")
        elif now[name] != then[name]:
            reasons.append(f"code: {name} changed since the report")
    return reasons
