"""The benchmark suite's one command.

    python -m benchmarks run [--quick] [--only NAME ...]   measure; write results/, BENCHMARKS.md
    python -m benchmarks check [--quick | --results DIR]   compare with the committed ratios
    python -m benchmarks tables                            regenerate BENCHMARKS.md from results/
    python -m benchmarks pipeline --preset default         time a preset + overhead breakdown
    python -m benchmarks baseline --repo DIR               then the same preset at another
                                                           checkout: the wall-time ratio
    python -m benchmarks scaling --preset default          the preset on 1 core against 2

Run from the repository root. ``check`` exits 1 and lists every ratio that
got worse than its committed value by more than 20 %, direction-aware
(an overhead that rose, a speed-up that fell); it exits 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks import guard, suite, tables
from benchmarks.reporting import ratio

REPO = Path(__file__).resolve().parents[1]
MARKDOWN = REPO / "BENCHMARKS.md"


def cmd_run(args) -> int:
    suite.run(args.results_dir, quick=args.quick, only=args.only)
    names = tables.update(args.markdown, args.results_dir)
    print(f"[benchmarks] wrote {args.results_dir} and {len(names)} tables of {args.markdown}")
    return 0


def cmd_check(args) -> int:
    if args.results:
        current = Path(args.results)
    else:
        current = Path(tempfile.mkdtemp(prefix="sfbench-bench-"))
        suite.run(current, quick=args.quick, only=args.only)
    rows, unmatched = guard.check(args.results_dir, current, args.tolerance)
    for c in rows:
        print(("WORSE  " if c.change > args.tolerance else "ok     ") + c.describe())
    if unmatched:
        print("not compared (measured on one side only): " + ", ".join(unmatched))
    bad = guard.regressions(rows, args.tolerance)
    if bad:
        print(f"\n{len(bad)} ratio(s) got worse by more than {args.tolerance:.0%} "
              f"against {args.results_dir}:", file=sys.stderr)
        for c in bad:
            print("  " + c.describe(), file=sys.stderr)
        return 1
    print(f"no ratio got worse by more than {args.tolerance:.0%} ({len(rows)} compared)")
    return 0


def cmd_tables(args) -> int:
    names = tables.update(args.markdown, args.results_dir)
    print(f"regenerated {', '.join(names)} in {args.markdown}")
    return 0


#: Targets of the pipeline's guarded figures (issue 16): time outside model computation,
#: Snakemake's own CPU as a share of the run's, and the wall time against a baseline checkout.
OUTSIDE_TARGET, SNAKEMAKE_CPU_TARGET, BASELINE_WALL_TARGET = 0.10, 0.02, 0.55


def pipeline_ratios(record: dict) -> dict:
    """The guarded ratios of a pipeline record, from its raw figures."""
    preset = record["preset"]
    ratios = {f"pipeline_{preset}_outside_fraction": ratio(
        record["overhead"]["outside_fraction_of_job_time"], "lower", OUTSIDE_TARGET)}
    if record.get("snakemake_cpu_s") is not None:
        ratios[f"pipeline_{preset}_snakemake_cpu_fraction"] = ratio(
            record["snakemake_cpu_s"] / record["total_cpu_s"], "lower", SNAKEMAKE_CPU_TARGET)
    if record.get("baseline"):
        ratios[f"pipeline_{preset}_wall_vs_baseline"] = ratio(
            record["total_wall_s"] / record["baseline"]["total_wall_s"], "lower",
            BASELINE_WALL_TARGET)
    return ratios


def cmd_pipeline(args) -> int:
    from benchmarks.pipeline_overhead import analyse
    from benchmarks.pipeline_timing import time_pipeline
    from benchmarks.reporting import machine

    figures = time_pipeline(args.preset, args.cores, args.workdir)
    overhead = analyse(figures["workdir"])
    overhead["outside_fraction_of_core_time"] = (
        1 - overhead["compute_s"] / (figures["total_wall_s"] * args.cores))
    record = {"benchmark": f"pipeline_{args.preset}", **figures, "overhead": overhead,
              "machine": machine()}
    record["ratios"] = pipeline_ratios(record)
    out = Path(args.results_dir) / f"pipeline_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(tables.render(out.stem, out.parent))
    return 0


def cmd_baseline(args) -> int:
    """Time the preset at another checkout, right after ``pipeline`` timed this one, and add
    it to that record as the baseline of the wall-time ratio."""
    import subprocess

    from benchmarks.pipeline_timing import time_pipeline

    out = Path(args.results_dir) / f"pipeline_{args.preset}.json"
    if not out.exists():
        raise FileNotFoundError(f"{out} does not exist: run `python -m benchmarks pipeline "
                                f"--preset {args.preset}` first, then the baseline")
    record = json.loads(out.read_text())
    repo = Path(args.repo).resolve()
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or None
    figures = time_pipeline(args.preset, record["cores"], args.workdir, repo)
    record["baseline"] = {"commit": commit, **{k: figures[k] for k in (
        "total_wall_s", "total_cpu_s", "snakemake_cpu_s", "mean_load_during", "repo",
        "workdir", "rules", "jobs")}}
    record["ratios"] = pipeline_ratios(record)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(tables.render(out.stem, out.parent))
    return 0


def cmd_scaling(args) -> int:
    from benchmarks.pipeline_scaling import measure

    record = measure(args.preset, args.cores)
    out = Path(args.results_dir) / f"pipeline_scaling_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(tables.render(out.stem, out.parent))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--results-dir", default=str(suite.RESULTS_DIR),
                   help="committed results (default: benchmarks/results)")
    p.add_argument("--markdown", default=str(MARKDOWN), help="the file whose tables to rewrite")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="measure the micro-benchmarks, rewrite BENCHMARKS.md "
                         f"({', '.join(sorted(suite.OPT_IN))}: only with --only)")
    check = sub.add_parser("check", help="compare fresh (or given) ratios with the committed")
    for s in (run, check):
        s.add_argument("--quick", action="store_true", help="smaller settings (about 1 min)")
        s.add_argument("--only", nargs="+", choices=sorted(suite.MICRO), help="a subset")
    check.add_argument("--results", help="compare this results directory instead of measuring")
    check.add_argument("--tolerance", type=float, default=guard.TOLERANCE)
    sub.add_parser("tables", help="regenerate BENCHMARKS.md's tables from the results")
    for name in ("pipeline", "scaling", "baseline"):
        s = sub.add_parser(name, help=f"the {name} benchmark of a preset (minutes to hours)")
        s.add_argument("--preset", default="default")
    sub.choices["pipeline"].add_argument("--cores", type=int, default=2)
    for name in ("pipeline", "baseline"):
        sub.choices[name].add_argument("--workdir")
    sub.choices["baseline"].add_argument(
        "--repo", required=True,
        help="the baseline checkout (e.g. a git worktree of an older commit)")
    sub.choices["scaling"].add_argument("--cores", nargs="+", type=int, default=[1, 2])
    args = p.parse_args(argv)
    handlers = {"run": cmd_run, "check": cmd_check, "tables": cmd_tables,
                "pipeline": cmd_pipeline, "scaling": cmd_scaling, "baseline": cmd_baseline}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
