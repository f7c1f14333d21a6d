"""Where a finished pipeline run spent its time: model computation or everything around it.

    python -m benchmarks.pipeline_overhead RUN_DIR [--cores 2] [--wall-s 1007] [--json out.json]

Reads a run directory after ``snakemake`` finished in it:

- ``logs/benchmarks/<rule>/<key>.tsv``: Snakemake's measurement of each job,
  ``s`` = the job's wall seconds (process start to exit, as Snakemake sees it);
- ``results/<rule>/<key>.json``: the same job's record, whose ``result`` holds
  the seconds the job itself timed around its computation: ``wall_seconds``
  (the training loop), ``sample_seconds``, ``eval_seconds`` and
  ``held_out_seconds`` (a sweep's solvers and metrics on the selection and
  held-out noise seeds), ``nll_seconds`` (the likelihood), whichever it has.

A job's *model computation* is the sum of those in-process timings; the rest
of its wall time is *outside* it: interpreter start and imports, reading
data and checkpoints (a sweep's ``load_seconds``), writing results, plots,
MLflow. Jobs of rules that time nothing (``data``, ``reference``,
``report``) count as outside entirely, and rules that should time their
computation but do not are listed so the gap is visible.

Two fractions: of the summed job wall time, and -- with ``--wall-s`` and
``--cores`` -- of the run's core-seconds (wall x cores), which also counts
Snakemake's own scheduling and idle cores.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

#: In-process timings that count as model computation, wherever a record has them.
COMPUTE_KEYS = ("wall_seconds", "sample_seconds", "eval_seconds", "held_out_seconds",
                "nll_seconds",
                "decompose_seconds", "straightness_seconds")
#: Benchmark folders (logs/benchmarks/<folder>) of jobs that run models and so
#: should report one of COMPUTE_KEYS (image and paired rules share train/sweep/nll).
MODEL_RULES = ("train", "sweep", "nll", "classifier", "pairs", "decompose")
#: Where a benchmark folder's records are when not results/<folder>/.
RESULT_DIRS = {"classifier": "train/fid_classifier"}


def job_seconds(tsv: Path) -> float:
    with tsv.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{tsv}: not a Snakemake benchmark file (no 's' column)")
    return float(rows[0]["s"])


def compute_seconds(record_path: Path) -> float | None:
    """The record's in-process model-computation seconds, or None if it times nothing."""
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    result = record.get("result", {})
    found = [float(result[k]) for k in COMPUTE_KEYS if isinstance(result.get(k), int | float)]
    # A sweep job also writes its model's NLL record (`--nll-result`): that time is its too.
    for out in record.get("outputs", []):
        other = Path(out) if Path(out).is_absolute() else _run_dir(record_path) / out
        if other.suffix == ".json" and other != record_path and other.exists():
            nll = json.loads(other.read_text()).get("result", {}).get("nll_seconds")
            if isinstance(nll, int | float):
                found.append(float(nll))
    return sum(found) if found else None


def _run_dir(record_path: Path) -> Path:
    """The run directory of ``<run>/results/...`` (outputs are relative to it)."""
    for parent in record_path.parents:
        if parent.name == "results":
            return parent.parent
    return record_path.parent


def analyse(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    bench_root = run_dir / "logs" / "benchmarks"
    tsvs = sorted(bench_root.rglob("*.tsv"))
    if not tsvs:
        raise FileNotFoundError(f"no Snakemake benchmark files under {bench_root}: "
                                "is this a finished pipeline run directory?")
    rules: dict[str, dict] = {}
    for tsv in tsvs:
        rel = tsv.relative_to(bench_root)
        rule = rel.parts[0]
        row = rules.setdefault(rule, {"rule": rule, "jobs": 0, "job_s": 0.0, "compute_s": 0.0,
                                      "untimed_jobs": 0})
        row["jobs"] += 1
        row["job_s"] += job_seconds(tsv)
        record = Path(RESULT_DIRS.get(rule, rule), *rel.parts[1:]).with_suffix(".json")
        compute = compute_seconds(run_dir / "results" / record)
        if compute is None:
            row["untimed_jobs"] += 1
        else:
            row["compute_s"] += compute
    for row in rules.values():
        row["outside_s"] = row["job_s"] - row["compute_s"]
        row["outside_fraction"] = row["outside_s"] / row["job_s"] if row["job_s"] else 0.0
    job_s = sum(r["job_s"] for r in rules.values())
    compute_s = sum(r["compute_s"] for r in rules.values())
    missing = sorted(r["rule"] for r in rules.values()
                     if r["rule"] in MODEL_RULES and r["untimed_jobs"])
    return {
        "run_dir": str(run_dir),
        "rules": sorted(rules.values(), key=lambda r: -r["job_s"]),
        "job_s": job_s,
        "compute_s": compute_s,
        "outside_fraction_of_job_time": 1 - compute_s / job_s,
        "model_rules_without_timing": missing,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--wall-s", type=float, help="wall time of the whole snakemake command")
    p.add_argument("--cores", type=int, help="--cores of that run")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args(argv)
    figures = analyse(args.run_dir)
    if args.wall_s and args.cores:
        core_s = args.wall_s * args.cores
        figures.update(wall_s=args.wall_s, cores=args.cores,
                       outside_fraction_of_core_time=1 - figures["compute_s"] / core_s)
    print("| rule | jobs | job wall (s) | model computation (s) | outside (s) | outside |")
    print("|---|---|---|---|---|---|")
    for r in figures["rules"]:
        note = f" ({r['untimed_jobs']} untimed)" if r["untimed_jobs"] else ""
        print(f"| {r['rule']} | {r['jobs']} | {r['job_s']:.1f} | {r['compute_s']:.1f}{note} "
              f"| {r['outside_s']:.1f} | {r['outside_fraction']:.0%} |")
    print(f"outside model computation: {figures['outside_fraction_of_job_time']:.1%} of job time")
    if "outside_fraction_of_core_time" in figures:
        print(f"  and {figures['outside_fraction_of_core_time']:.1%} of wall x cores")
    if figures["model_rules_without_timing"]:
        print("rules that run models but record no in-process timing: "
              + ", ".join(figures["model_rules_without_timing"]))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
