"""Command-line entry point: ``sfbench <command>`` and ``python -m sfbench <command>``.

Each command is a module in :mod:`sfbench.commands` with ``add_parser`` and
``run(args) -> record``; ``main`` writes the record (every setting that shaped
the result, the result itself and the package versions) atomically to
``--result`` and, when an MLflow experiment is named, tracks the job.

The tracking flags are global, given before the command so that the
workflow passes them explicitly rather than through the environment::

    python -m sfbench --mlflow-experiment sfbench-default --config-hash abc123 train ...

(``--mlflow-experiment`` is also accepted after the command, as before.)
Their defaults are ``$SFBENCH_MLFLOW_EXPERIMENT`` and ``$SFBENCH_CONFIG_HASH``.

Building the parser must stay cheap: a command module imports only the
standard library and :mod:`sfbench.commands.common` / ``names`` at the top,
and its heavy modules (torch, numpy, MLflow) inside ``run``, so that
``sfbench --help`` costs a fraction of a second instead of seconds of CPU
(``tests/test_cli_startup.py``; ``benchmarks/cli_startup.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Mapping

from sfbench.argtypes import positive_int
from sfbench.errors import SfbenchError

COMMANDS = (
    "data",
    "train",
    "sample",
    "evaluate",
    "sweep",
    "reference",
    "report",
    "classifier",
    "reflow-pairs",
    "decompose",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfbench",
        description="Train, sample and evaluate diffusion, score and flow models on one footing.",
        epilog=_plugins_text(),
    )
    experiment_help = (
        "track this job as an MLflow run in this experiment "
        "(default: $SFBENCH_MLFLOW_EXPERIMENT; untracked if unset)"
    )
    parser.add_argument(
        "--mlflow-experiment", default=os.environ.get("SFBENCH_MLFLOW_EXPERIMENT"),
        help=experiment_help,
    )
    parser.add_argument(
        "--config-hash", default=os.environ.get("SFBENCH_CONFIG_HASH") or None,
        help="hash of the pipeline configuration, the tracked run's config_hash tag: a run "
        "of the same job key under another hash is replaced (default: $SFBENCH_CONFIG_HASH)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"sfbench.commands.{name.replace('-', '_')}")
        cmd = module.add_parser(sub)
        cmd.set_defaults(_module=module)
        tracking = cmd.add_argument_group("tracking")
        # SUPPRESS: given after the command it overrides the global flag; absent, it
        # leaves the global value (a subparser's default would overwrite it).
        tracking.add_argument(
            "--mlflow-experiment", default=argparse.SUPPRESS, help=experiment_help
        )
        tracking.add_argument("--job-key", help="stable key of this job (one MLflow run per key)")
        tracking.add_argument("--parent-key", help="job key of the parent run (the training job)")
        cmd.add_argument_group("CPU").add_argument(
            "--threads", type=positive_int,
            help="torch's CPU threads (default: $OMP_NUM_THREADS, which the pipeline sets per "
            "job, else 1: with this benchmark's small networks more threads gain a few per "
            "cent on an idle machine and run 2x slower or worse when another process shares "
            "the cores; more can pay for large models on many cores; CUDA work is unaffected)",
        )
    return parser


def _plugins_text() -> str | None:
    """The installed plug-ins by registry (names from their metadata: nothing is imported)."""
    from sfbench.plugins import GROUPS, names

    found = [f"{registry} {', '.join(names(group))}" for registry, group in GROUPS.items()
             if names(group)]
    return f"installed plug-ins (docs/EXTENDING.md): {'; '.join(found)}" if found else None


def thread_count(flag: int | None, environ: Mapping[str, str] = os.environ) -> int:
    """``--threads``, else the first level of ``$OMP_NUM_THREADS``, else 1.

    One thread by default because a command run by hand is a small CPU
    workload (BENCHMARKS.md, "Threads of a command run by hand"): torch's own
    default, one thread per core, gains a few per cent on an idle machine and
    is 2x slower or worse as soon as another process is busy on one of the cores.
    An unusable value of the variable is ignored, as if unset.
    """
    if flag is not None:
        return flag
    try:
        value = int(environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return 1
    return value if value >= 1 else 1


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` intra-op torch threads; restore the count after it.

    Restoring keeps :func:`main` free of lasting effects for in-process callers
    (the tests); a command's process ends after it anyway.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _no_child_run(name: str, settings: dict, result: dict) -> None:
    """``args.log_child`` of an untracked command: a child record goes nowhere."""


def _execute(args) -> dict:
    from sfbench.io import environment

    record = args._module.run(args)
    record["environment"] = environment()
    return record


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.log_child = _no_child_run  # replaced by the tracker's inside a tracked job
    from sfbench.distributed import processes
    from sfbench.io import write_json

    try:
        with torch_threads(thread_count(args.threads)):
            # a command with no --result (`report --check`) is a question, not a job
            if not processes().main:  # torchrun's other processes: the first one records
                args._module.run(args)
            elif args.mlflow_experiment and args.result:
                from sfbench.tracking import tracked

                with tracked(
                    experiment=args.mlflow_experiment,
                    job_key=args.job_key or args.result,
                    command=args.command,
                    parent_key=args.parent_key,
                    config_hash=args.config_hash,
                ) as tracker:
                    args.log_child = tracker.log_child  # a command's nested runs (sweep cells)
                    record = _execute(args)
                    write_json(args.result, record)
                    tracker.log_record(
                        record, artifacts=[args.result, *record.get("outputs", [])]
                    )
            else:
                record = _execute(args)
                if args.result:
                    write_json(args.result, record)
    except (SfbenchError, ValueError, FileNotFoundError) as err:
        print(f"sfbench {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
