"""Command-line entry point: ``sfbench <command>`` and ``python -m sfbench <command>``.

Each command is a module in :mod:`sfbench.commands` with ``add_parser`` and
``run(args) -> record``; ``main`` writes the record (every setting that shaped
the result, the result itself and the package versions) atomically to
``--result`` and, when an MLflow experiment is named, tracks the job.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from sfbench.errors import SfbenchError
from sfbench.io import environment, write_json

COMMANDS = (
    "data",
    "train",
    "sample",
    "evaluate",
    "sweep",
    "report",
    "classifier",
    "reflow-pairs",
    "decompose",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfbench",
        description="Train, sample and evaluate diffusion, score and flow models on one footing.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"sfbench.commands.{name.replace('-', '_')}")
        cmd = module.add_parser(sub)
        cmd.set_defaults(_module=module)
        tracking = cmd.add_argument_group("tracking")
        tracking.add_argument(
            "--mlflow-experiment",
            default=os.environ.get("SFBENCH_MLFLOW_EXPERIMENT"),
            help="track this job as an MLflow run in this experiment "
            "(default: $SFBENCH_MLFLOW_EXPERIMENT; untracked if unset)",
        )
        tracking.add_argument("--job-key", help="stable key of this job (one MLflow run per key)")
        tracking.add_argument("--parent-key", help="job key of the parent run (the training job)")
    return parser


def _execute(args) -> dict:
    record = args._module.run(args)
    record["environment"] = environment()
    return record


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.mlflow_experiment:
            from sfbench.tracking import tracked

            with tracked(
                experiment=args.mlflow_experiment,
                job_key=args.job_key or args.result,
                command=args.command,
                parent_key=args.parent_key,
            ) as tracker:
                record = _execute(args)
                write_json(args.result, record)
                tracker.log_record(record, artifacts=[args.result, *record.get("outputs", [])])
        else:
            record = _execute(args)
            write_json(args.result, record)
    except (SfbenchError, ValueError, FileNotFoundError) as err:
        print(f"sfbench {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0
