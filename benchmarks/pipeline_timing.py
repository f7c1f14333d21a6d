"""Time the Snakemake pipeline on one preset, end to end, with a per-stage breakdown.

    python -m benchmarks.pipeline_timing --preset default --cores 2
    python -m benchmarks.pipeline_timing --preset smoke --cores 2 --workdir /tmp/smoke-run

Copies the workflow files into a fresh working directory (new results, new
MLflow database), runs ``snakemake --cores N --configfile config/<preset>.yaml``
and prints, per rule, the number of jobs, the summed job wall time and CPU
time (from the rules' ``benchmark:`` files; Snakemake samples a job's CPU time
periodically, so short jobs are undercounted). The totals are the wall time of
the whole ``snakemake`` command, the CPU time of it and every process it
started (``getrusage(RUSAGE_CHILDREN)``), and Snakemake's own CPU time, every
thread of its process but none of its jobs (``getrusage(RUSAGE_SELF)`` inside
it, at exit): the scheduler's cost, which the jobs do not see.
``--repo DIR`` runs another checkout's workflow and package (its ``src`` first
on ``PYTHONPATH``), to compare two commits side by side in one environment.
The load average is sampled during the run: other processes on the machine
slow it down, and then total CPU / cores is the better estimate of the wall
time on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: what a run reads besides the package (examples: the presets' external models)
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "examples")


def prepare(workdir: Path, repo: Path = REPO) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src, dst = Path(repo) / name, workdir / name
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        if not src.exists():  # an older checkout, from before examples/
            continue
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)


def jobs_done(workdir: Path) -> int | None:
    """Jobs Snakemake reports done in the run's log (``N of N steps (100%) done``); rules
    without a ``benchmark:`` file count too."""
    import re

    log = Path(workdir) / "snakemake.out"
    counts = re.findall(r"(\d+) of \d+ steps", log.read_text()) if log.exists() else []
    return int(counts[-1]) if counts else None


def read_benchmarks(workdir: Path) -> dict[str, list[dict]]:
    """{rule: [{"s": wall seconds, "cpu_time": seconds}, ...]} from logs/benchmarks/<rule>/."""
    out: dict[str, list[dict]] = {}
    root = workdir / "logs" / "benchmarks"
    for path in sorted(root.rglob("*.tsv")):
        rule = path.relative_to(root).parts[0]
        with path.open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                out.setdefault(rule, []).append(
                    {"s": float(row["s"]), "cpu_time": float(row.get("cpu_time") or "nan"),
                     "mtime": path.stat().st_mtime}
                )
    return out


# Runs Snakemake's command line in this interpreter and writes, at exit, the CPU
# seconds of its own process (all threads, no child) to the file named first.
OWN_CPU = (
    "import atexit, json, resource, sys\n"
    "out = sys.argv.pop(1)\n"
    "def own():\n"
    "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    open(out, 'w').write(json.dumps({'user': u.ru_utime, 'sys': u.ru_stime}))\n"
    "atexit.register(own)\n"
    "from snakemake.cli import main\n"
    "main()\n"
)


def time_pipeline(preset: str, cores: int, workdir: str | None = None,
                  repo: Path = REPO) -> dict:
    """Run the preset in a fresh copy of the workflow; its figures (raises if snakemake fails)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"sfbench-{preset}-"))
    prepare(workdir, repo)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "SFBENCH_MLFLOW_EXPERIMENT")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(Path(repo) / "src")
    own_cpu_file = workdir / "snakemake_own_cpu.json"
    load_before = os.getloadavg()
    loads: list[float] = []
    done = threading.Event()

    def sample_load() -> None:
        while not done.wait(10.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", OWN_CPU, str(own_cpu_file),
         "--cores", str(cores), "--configfile", f"config/{preset}.yaml"],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    total = time.time() - start
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    cpu_total = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    mean_load = sum(loads) / len(loads) if loads else float("nan")
    (workdir / "snakemake.out").write_text(proc.stdout)
    if proc.returncode != 0:
        print(proc.stdout[-5000:], file=sys.stderr)
        raise RuntimeError(f"snakemake failed (exit {proc.returncode}); workdir {workdir}")

    own = json.loads(own_cpu_file.read_text())
    bench = read_benchmarks(workdir)
    rows = []
    for rule, jobs in bench.items():
        rows.append({
            "rule": rule, "jobs": len(jobs),
            "wall_s_sum": sum(j["s"] for j in jobs),
            "cpu_s_sum": sum(j["cpu_time"] for j in jobs),
            "wall_s_mean": sum(j["s"] for j in jobs) / len(jobs),
        })
    order = ["data", "reference", "train", "sweep", "nll", "report"]
    rows.sort(key=lambda r: order.index(r["rule"]) if r["rule"] in order else len(order))
    return {
        "preset": preset, "cores": cores, "total_wall_s": total,
        "total_cpu_s": cpu_total, "mean_load_during": mean_load,
        "snakemake_cpu_s": own["user"] + own["sys"], "repo": str(repo),
        "load_average_before": load_before, "machine": platform.platform(),
        "cpu_count": os.cpu_count(), "workdir": str(workdir), "rules": rows,
        "jobs": jobs_done(workdir),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="default")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--workdir", help="working directory (default: a new temporary one)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--repo", type=Path, default=REPO,
                   help="checkout whose workflow and package to run (default: this one)")
    args = p.parse_args(argv)
    try:
        figures = time_pipeline(args.preset, args.cores, args.workdir, args.repo)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    total, cpu_total = figures["total_wall_s"], figures["total_cpu_s"]
    load_before, mean_load = figures["load_average_before"], figures["mean_load_during"]
    rows, workdir = figures["rules"], figures["workdir"]
    print(f"preset {args.preset}, --cores {args.cores}: {total:.0f} s wall "
          f"({total / 60:.1f} min), {cpu_total:.0f} s CPU in all processes "
          f"(CPU / cores = {cpu_total / args.cores / 60:.1f} min); load average "
          f"{load_before[0]:.2f} before, {mean_load:.2f} on average during the run")
    own = figures["snakemake_cpu_s"]
    print(f"Snakemake's own process: {own:.1f} s CPU, {100 * own / cpu_total:.1f} % of the "
          f"run's CPU ({own / total:.2f} of a core on average)")
    print("| rule | jobs | job wall time, sum (s) | CPU time, sum (s) | mean per job (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['rule']} | {r['jobs']} | {r['wall_s_sum']:.0f} | {r['cpu_s_sum']:.0f} "
              f"| {r['wall_s_mean']:.1f} |")
    print(f"workdir: {workdir}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
