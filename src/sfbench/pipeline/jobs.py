"""How the workflow starts a job: the interpreter, the global flags, the code it depends on.

- :func:`sfbench_command`: ``<python> -m sfbench`` (every rule's ``params.sfbench``,
  a rerun trigger: jobs run by another environment rerun);
- :class:`Launcher`: a training job's ``params.launch``, one process or
  ``torchrun`` over the job's GPUs; not a rerun trigger;
- :class:`GlobalFlags`: ``--mlflow-experiment E --config-hash H`` before the
  command, deliberately *not* a rerun trigger (see its docstring);
- :func:`code_fingerprint`: a hash of the package modules a rule's command
  runs, as a job parameter, so editing a solver reruns the sweeps and nothing
  else (:func:`sfbench.provenance.command_sources`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import sys

from sfbench import provenance

#: The sfbench command each rule runs (`python -m sfbench <command>`).
RULE_COMMANDS = {
    "data": "data",
    "reference": "reference",
    "classifier": "classifier",
    "train": "train",
    "pairs": "reflow_pairs",
    "sweep": "sweep",
    "nll": "evaluate",
    "decompose": "decompose",
    "report": "report",
}


def job_python(conda: bool = False) -> str:
    """The interpreter every job runs ``-m sfbench`` with.

    Snakemake's own interpreter: it imported sfbench to plan the jobs, so it
    has the package and the versions the environment fingerprint names (a
    bare ``python`` would be whatever comes first on PATH). On a SLURM node
    the job is planned again by the same interpreter (shared file system).
    With ``conda`` (``--sdm conda``) the rule's environment puts its own
    ``python`` first on PATH. ``$SFBENCH_PYTHON`` overrides both (a cluster
    whose nodes see the environment under another path).
    """
    return os.environ.get("SFBENCH_PYTHON") or ("python" if conda else sys.executable)


def sfbench_command(conda: bool = False) -> str:
    return f"{shlex.quote(job_python(conda))} -m sfbench"


class Launcher:
    """How a training job starts ``python -m sfbench``: as one process, or under
    ``torchrun`` with one process per GPU when the job was given several
    (the resource ``gpu``, e.g. ``--set-resources train:gpu=4`` with
    profiles/slurm); the preset's ``train: {micro_batches: ...}`` must then be
    a multiple of that count (:mod:`sfbench.distributed`).

    Not a ``str``, so not a rerun trigger (see :class:`GlobalFlags`): the
    weights do not depend on how many processes computed them.
    """

    def __init__(self, gpus: int, conda: bool = False):
        self.text = sfbench_command(conda) if gpus <= 1 else (
            f"{shlex.quote(job_python(conda))} -m torch.distributed.run --standalone"
            f" --nproc-per-node {gpus} -m sfbench")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Launcher({self.text!r})"


class GlobalFlags:
    """``--mlflow-experiment E --config-hash H``: where and with which tag a job is tracked.

    Not a ``str``: Snakemake leaves a parameter it cannot represent out of its
    params rerun trigger, and these must not be one. The config hash changes
    with every edit of the preset; the jobs whose settings changed rerun
    through their own parameters and settings files, the others must not.
    ``$SFBENCH_MLFLOW_EXPERIMENT`` still overrides the preset's experiment.
    """

    def __init__(self, cfg: dict):
        experiment = os.environ.get("SFBENCH_MLFLOW_EXPERIMENT") or cfg["mlflow_experiment"]
        self.text = (f"--mlflow-experiment {shlex.quote(experiment)}"
                     f" --config-hash {provenance.config_hash(cfg)}")

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GlobalFlags({self.text!r})"


@functools.cache  # one hash per rule, however many jobs it has
def code_fingerprint(rule: str) -> str:
    """Short hash of the package modules the command of ``rule`` runs (a job parameter).

    A parameter, not the modules as inputs: Snakemake's scheduler stats every
    input of every ready job each time it selects jobs (about once a second
    under its default rate limit), and ~50 module files per job made that
    the largest part of its own CPU time. Its params trigger reruns a job
    whose hash changed, as the inputs' content check did.
    """
    if rule not in RULE_COMMANDS:
        raise KeyError(f"code_fingerprint: no command is known for rule {rule!r} "
                       f"(known: {', '.join(RULE_COMMANDS)})")
    files = provenance.code_fingerprint([RULE_COMMANDS[rule]])
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache  # every rule asks; the versions do not change during a run
def environment_fingerprint() -> str:
    """Short hash of the Python and numeric-library versions (a job parameter)."""
    return provenance.environment_fingerprint()
