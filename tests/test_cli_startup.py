"""`sfbench --help` and `sfbench COMMAND --help` stay cheap: no torch, scipy, MLflow or numpy.

Building the parser used to import every command's implementation, and with
it torch: about 5 s of CPU for a help text. Each command module now imports
its heavy modules inside ``run``; these tests keep it so. numpy counts as
heavy too: its import alone costs about 4x a bare interpreter start here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sfbench.commands import names

HEAVY = ("torch", "scipy", "mlflow", "numpy", "pandas", "matplotlib", "ot", "sklearn",
         "torchdiffeq", "torchmetrics")


def imported_packages(importtime_log: str) -> set[str]:
    """Top-level packages named by ``python -X importtime`` (one line per first import)."""
    packages = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            module = line.rsplit("|", 1)[1].strip()
            packages.add(module.split(".")[0])
    return packages


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["sweep", "--help"]],
                         ids=["sfbench", "train", "sweep"])
def test_help_imports_no_heavy_library(argv):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sfbench", *argv],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: sfbench" in proc.stdout
    loaded = imported_packages(proc.stderr)
    assert "sfbench" in loaded  # the log was read
    assert sorted(loaded & set(HEAVY)) == []


# Every command's help in one process, naming the command that first loads a heavy module.
EVERY_HELP = """
import contextlib, io, json, sys
from sfbench import cli
heavy, first = sys.argv[1:], {}
for name in cli.COMMANDS:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        cli.main([name, "--help"])
    first.update({m: name for m in heavy if m in sys.modules and m not in first})
print(json.dumps(first))
"""


def test_no_command_help_imports_a_heavy_library():
    proc = subprocess.run([sys.executable, "-c", EVERY_HELP, *HEAVY],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first_loaded_by = json.loads(proc.stdout.splitlines()[-1])
    assert first_loaded_by == {}, f"module -> the command whose help imported it: {first_loaded_by}"


def test_help_names_equal_the_registries():
    """Built-ins and the installed plug-ins (tests/plugins repeats this with one installed)."""
    from sfbench.data import DATASETS
    from sfbench.eval.metrics import METRICS
    from sfbench.methods import METHODS
    from sfbench.models.registry import NETWORKS
    from sfbench.solvers import SOLVERS

    assert tuple(METHODS) == names.METHODS
    assert tuple(DATASETS) == names.DATASETS
    assert tuple(SOLVERS) == names.SOLVERS
    assert tuple(METRICS) == names.METRICS
    assert tuple(NETWORKS) == names.NETWORKS
