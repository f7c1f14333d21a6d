"""The benchmark suite's one command.

    python -m benchmarks run [--quick] [--only NAME ...]   measure; write results/, BENCHMARKS.md
    python -m benchmarks check [--quick | --results DIR]   compare with the committed ratios
    python -m benchmarks tables                            regenerate BENCHMARKS.md from results/
    python -m benchmarks pipeline --preset default         time a preset + overhead breakdown
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


def cmd_pipeline(args) -> int:
    from benchmarks.pipeline_overhead import analyse
    from benchmarks.pipeline_timing import time_pipeline
    from benchmarks.reporting import machine, ratio

    figures = time_pipeline(args.preset, args.cores, args.workdir)
    overhead = analyse(figures["workdir"])
    overhead["outside_fraction_of_core_time"] = (
        1 - overhead["compute_s"] / (figures["total_wall_s"] * args.cores))
    record = {
        "benchmark": f"pipeline_{args.preset}", **figures, "overhead": overhead,
        "ratios": {f"pipeline_{args.preset}_outside_fraction": ratio(
            overhead["outside_fraction_of_job_time"], "lower", 0.15)},
        "machine": machine(),
    }
    out = Path(args.results_dir) / f"pipeline_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
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
    for name in ("pipeline", "scaling"):
        s = sub.add_parser(name, help=f"the {name} benchmark of a preset (minutes to hours)")
        s.add_argument("--preset", default="default")
    sub.choices["pipeline"].add_argument("--cores", type=int, default=2)
    sub.choices["pipeline"].add_argument("--workdir")
    sub.choices["scaling"].add_argument("--cores", nargs="+", type=int, default=[1, 2])
    args = p.parse_args(argv)
    handlers = {"run": cmd_run, "check": cmd_check, "tables": cmd_tables,
                "pipeline": cmd_pipeline, "scaling": cmd_scaling}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
