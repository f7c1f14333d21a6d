"""The micro-benchmarks of the suite, their settings (full and quick), and where results go."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import (
    cli_startup,
    cli_threads,
    divergence,
    flops,
    nll_flow_matching,
    ode_solvers,
    seed_layouts,
    train_step,
)
from benchmarks.reporting import machine

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: name -> (run function, full settings, quick settings). Pipeline figures are not
#: here: they take minutes to hours and are written by ``benchmarks.pipeline_*``.
MICRO: dict[str, tuple[Callable[..., dict], dict, dict]] = {
    "train_step": (train_step.run, {"steps": 300, "rounds": 9}, {"steps": 100, "rounds": 3}),
    "ode_solvers": (ode_solvers.run, {"rounds": 7}, {"rounds": 3, "quick": True}),
    "divergence": (
        divergence.run,
        {"batches": (1, 8, 64), "rounds": 5},
        {"batches": (1, 8), "rounds": 3, "hutchinson_batch": 64},
    ),
    "flops": (flops.run, {"steps": 100, "rounds": 3}, {"steps": 30, "rounds": 2}),
    "cli_startup": (cli_startup.run, {"rounds": 15}, {"rounds": 5}),
    "cli_threads": (
        cli_threads.run,
        {"rounds": 3, "steps": 400, "timeout": 120.0},
        {"rounds": 1, "steps": 100, "timeout": 60.0},
    ),
    "nll_flow_matching": (
        nll_flow_matching.run,
        {"n": 300, "repeats": 5},
        {"n": 100, "repeats": 2, "train_steps": 300},
    ),
    "seed_layouts": (seed_layouts.run, {"seeds": 3, "steps": 1500}, {"seeds": 2, "steps": 200}),
}

#: Run only when named with ``--only``: minutes (``cli_threads``: about 4 min on
#: an idle 2-core machine, 15 min on a busy one, most of it in two-thread runs;
#: ``seed_layouts``: about 2 min, trains the seeds three times over);
#: ``nll_flow_matching`` needs the ``bench`` extra (flow-matching).
OPT_IN = {"cli_threads", "nll_flow_matching", "seed_layouts"}


def run(results_dir: str | Path = RESULTS_DIR, quick: bool = False,
        only: list[str] | None = None, threads: int = 1) -> dict[str, dict]:
    """Run the micro-benchmarks (one torch thread, as the pipeline's jobs), write one JSON each.

    Those in :data:`OPT_IN` run only when ``only`` names them.
    """
    unknown = sorted(set(only or ()) - MICRO.keys())
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(MICRO)}")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    records = {}
    for name, (fn, full, fast) in MICRO.items():
        if (only and name not in only) or (not only and name in OPT_IN):
            continue
        print(f"[benchmarks] {name} ({'quick' if quick else 'full'})", flush=True)
        record = {**fn(**(fast if quick else full)), "quick": quick, "machine": machine()}
        (results_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        records[name] = record
    return records
