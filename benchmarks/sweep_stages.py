"""One sweep job's stages, side by side for two checkouts of the package.

    python -m benchmarks.sweep_stages --workdir RUN \\
        --model results/models/8gaussians/rectified_flow/seed0.pt \\
        --data resources/data/8gaussians.npz --config resources/sweep_config/main.yaml \\
        --repo A=/path/to/before --repo B=/path/to/after [--rounds 2]

Runs ``python -m sfbench sweep`` (one torch thread, as the pipeline's jobs) in
``RUN`` (a working directory of a finished pipeline run, which holds the model,
data and settings files) with each checkout's ``src`` first on PYTHONPATH, in
turn A B A B ..., and prints each run's wall time and the stage timings its
record holds: selection-seed sampling (``sample_seconds``) and metrics
(``eval_seconds``), the held-out seeds (``held_out_seconds``), straightness,
loading; the rest of the wall time is start-up, the plot, writing and MLflow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("sample_seconds", "eval_seconds", "held_out_seconds", "straightness_seconds",
          "load_seconds")


def run_once(repo: Path, args, workdir: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix="sweep-stages-"))
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("SFBENCH_MLFLOW_EXPERIMENT", None)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sfbench", "sweep", "--model", args.model, "--data", args.data,
         "--config", args.config, "--out", str(out / "s.npz"), "--result", str(out / "s.json")],
        cwd=workdir, env=env, check=True, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    result = json.loads((out / "s.json").read_text())["result"]
    return {"wall_seconds": wall, **{k: result.get(k) for k in STAGES}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--repo", action="append", required=True, help="NAME=PATH, twice for A/B")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    repos = dict(r.split("=", 1) for r in args.repo)
    rows = []
    for rnd in range(args.rounds):
        for name, path in repos.items():
            row = {"repo": name, "round": rnd, **run_once(Path(path), args, args.workdir)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for name in repos:
        mine = [r for r in rows if r["repo"] == name]
        med = {k: sorted(r[k] for r in mine)[len(mine) // 2]
               for k in ("wall_seconds", *STAGES) if mine[0][k] is not None}
        print(json.dumps({"repo": name, "median": med}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
