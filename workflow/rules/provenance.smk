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

import functools
import sys

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


def code_inputs(rule_name: str) -> list:
    """The package source files the job of ``rule_name`` runs (absolute paths)."""
    if rule_name not in RULE_COMMANDS:
        raise WorkflowError(
            f"code_inputs: no command is known for {rule_name!r} (known: "
            f"{', '.join(RULE_COMMANDS)})"
        )
    try:
        from sfbench.provenance import command_sources
    except ImportError:
        raise WorkflowError(
            "the sfbench package is not importable by Snakemake's interpreter "
            f"({sys.executable}); run `bash scripts/install.sh` and start `.venv/bin/snakemake`"
        ) from None
    return list(command_sources(RULE_COMMANDS[rule_name]))


@functools.cache  # every rule's params ask; the versions do not change during a run
def environment_fingerprint() -> str:
    """Short hash of the Python and numeric-library versions (a job parameter)."""
    from sfbench.provenance import environment_fingerprint as fingerprint

    return fingerprint()
