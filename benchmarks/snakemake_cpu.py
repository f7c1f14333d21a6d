"""Snakemake's own share of the CPU while a preset runs, over a window of its run.

    python -m benchmarks.snakemake_cpu --preset default --cores 2 --seconds 600
    python -m benchmarks.snakemake_cpu --preset default --seconds 600 -- --scheduler greedy

A full ``default`` run takes hours on two cores; Snakemake's scheduling cost is
largest early, while dozens of jobs wait for a core, so a window of the run
measures it in the regime that matters. The workflow is copied into a fresh
working directory (:func:`benchmarks.pipeline_timing.prepare`) and started;
every ``--every`` seconds the Snakemake process's CPU time (utime + stime of
``/proc/<pid>/stat``: all its threads, none of its jobs) and the machine's busy
CPU time (``/proc/stat``) are read; after ``--seconds`` the run is stopped.
Snakemake's share is its CPU over the machine's busy CPU in the window (on a
machine that runs nothing else, the run's CPU). Arguments after ``--`` go to
Snakemake (an A/B of a setting). Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.pipeline_timing import REPO, prepare

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU of process ``pid`` itself (all threads, no children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def machine_busy() -> float:
    """Seconds of busy CPU of the whole machine since boot (all cores)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def measure(preset: str, cores: int, seconds: float, every: float, workdir: Path,
            repo: Path, extra: list[str]) -> dict:
    prepare(workdir, repo)
    env = {**os.environ, "PYTHONPATH": f"{repo / 'src'}{os.pathsep}"
           f"{os.environ.get('PYTHONPATH', '')}"}
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.Popen(
        [str(snakemake), "--cores", str(cores), "--configfile", f"config/{preset}.yaml",
         *extra], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    start, own0, busy0 = time.monotonic(), process_cpu(proc.pid), machine_busy()
    readings = []
    while time.monotonic() - start < seconds and proc.poll() is None:
        time.sleep(every)
        if proc.poll() is not None:
            break
        readings.append({"t": round(time.monotonic() - start, 1),
                         "snakemake_cpu": round(process_cpu(proc.pid) - own0, 2),
                         "machine_busy": round(machine_busy() - busy0, 2)})
    finished = proc.poll() is not None
    if not finished:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    last = readings[-1] if readings else {"t": 0, "snakemake_cpu": 0, "machine_busy": 0}
    done = sum(1 for _ in (workdir / "logs" / "benchmarks").rglob("*.tsv")) if (
        workdir / "logs" / "benchmarks").exists() else 0
    return {
        "preset": preset, "cores": cores, "window_seconds": last["t"],
        "finished_before_the_window_closed": finished, "jobs_finished": done,
        "snakemake_cpu_seconds": last["snakemake_cpu"],
        "machine_busy_seconds": last["machine_busy"],
        "snakemake_share": round(last["snakemake_cpu"] / max(last["machine_busy"], 1e-9), 4),
        "snakemake_cores": round(last["snakemake_cpu"] / max(last["t"], 1e-9), 3),
        "snakemake_args": extra, "repo": str(repo), "readings": readings,
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--every", type=float, default=10)
    p.add_argument("--repo", type=Path, default=REPO)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--out", type=Path, help="JSON file for the result")
    args = p.parse_args(own)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sfbench-snakemake-cpu-"))
    result = measure(args.preset, args.cores, args.seconds, args.every, workdir,
                     args.repo.resolve(), extra)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "readings"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
