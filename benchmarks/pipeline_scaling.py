"""Scaling of the pipeline with cores: one preset with ``--cores 1`` against ``--cores 2``.

    python -m benchmarks.pipeline_scaling --preset default [--cores 1 2] [--json out.json]

Each run gets its own fresh copy of the workflow (new results, new MLflow
database), one after the other, fewest cores first; the figure is the wall
time of the first over that of each other. The two runs cannot be
interleaved, so other load on the machine shows up in the figure: the load
average during each run is recorded next to it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.pipeline_timing import time_pipeline
from benchmarks.reporting import machine, ratio


def measure(preset: str, cores: list[int]) -> dict:
    if len(cores) < 2 or sorted(cores) != cores or cores[0] < 1:
        raise ValueError(f"--cores needs two or more increasing counts >= 1, got {cores}")
    runs = [time_pipeline(preset, n) for n in cores]
    base = runs[0]["total_wall_s"]
    for r in runs:
        r["speedup"] = base / r["total_wall_s"]
    return {
        "benchmark": f"pipeline_scaling_{preset}",
        "preset": preset,
        "runs": [{k: r[k] for k in ("cores", "total_wall_s", "total_cpu_s", "mean_load_during",
                                    "speedup", "workdir")} for r in runs],
        "ratios": {
            f"pipeline_{preset}_speedup_{r['cores']}_cores": ratio(r["speedup"], "higher")
            for r in runs[1:]
        },
        "machine": machine(),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="default")
    p.add_argument("--cores", nargs="+", type=int, default=[1, 2])
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    figures = measure(args.preset, args.cores)
    for r in figures["runs"]:
        print(f"--cores {r['cores']}: {r['total_wall_s']:.0f} s wall, speed-up "
              f"{r['speedup']:.2f}x (load {r['mean_load_during']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
