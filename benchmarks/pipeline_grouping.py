"""One process per sweep cell, or one per model? Measure both on the same cells.

    python benchmarks/pipeline_grouping.py --model results/models/8gaussians/cfm/seed0.pt \\
        --data resources/data/8gaussians.npz

A "cell" is one solver at one step count: sample, then evaluate against the
test split. Per-cell jobs run ``sfbench sample`` and ``sfbench evaluate`` as
two processes per cell (what a rule per cell would do); the grouped job runs
``sfbench sweep`` once for all cells. Both untracked (no MLflow), with one
torch thread, one after the other. Prints the wall time of each and the cost
per cell.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--solvers", nargs="+", default=["euler", "heun"])
    p.add_argument("--steps", nargs="+", type=int, default=[4, 16, 64])
    p.add_argument("--n-samples", type=int, default=1000)
    args = p.parse_args(argv)

    env = {k: v for k, v in os.environ.items() if k != "SFBENCH_MLFLOW_EXPERIMENT"}
    env["OMP_NUM_THREADS"] = "1"
    py = [sys.executable, "-m", "sfbench"]
    cells = [(s, n) for s in args.solvers for n in args.steps]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tic = time.perf_counter()
        for solver, steps in cells:
            out = tmp / f"{solver}_{steps}.npz"
            run([*py, "sample", "--model", args.model, "--solver", solver, "--steps", str(steps),
                 "--n-samples", str(args.n_samples), "--seed", "1", "--out", str(out),
                 "--result", str(tmp / f"{solver}_{steps}.sample.json")], env)
            run([*py, "evaluate", "--samples", str(out), "--data", args.data,
                 "--result", str(tmp / f"{solver}_{steps}.eval.json")], env)
        per_cell = time.perf_counter() - tic
        tic = time.perf_counter()
        run([*py, "sweep", "--model", args.model, "--data", args.data,
             "--solvers", *args.solvers, "--steps", *map(str, args.steps),
             "--n-samples", str(args.n_samples), "--seed", "1",
             "--out", str(tmp / "sweep.npz"), "--result", str(tmp / "sweep.json")], env)
        grouped = time.perf_counter() - tic
    n = len(cells)
    print(f"{n} cells, {args.n_samples} samples each")
    print(f"one process pair per cell: {per_cell:.1f} s ({per_cell / n:.2f} s per cell)")
    print(f"one sweep process:        {grouped:.1f} s ({grouped / n:.2f} s per cell)")
    print(f"speed-up of grouping: {per_cell / grouped:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
