"""Torch threads of a command run by hand: one thread against torch's default, idle and loaded.

Times ``sfbench train --method rectified_flow --dataset 8gaussians --steps
400`` (on a data file made first with ``sfbench data``), each run its own
process, with ``--threads 1`` and with ``--threads D``, D being torch's own
default on this machine (one thread per core), alternating A, B, A, B, ...
First on the machine as it is ("idle"), then "loaded": with a second process
busy-looping on one core, started and stopped here. A run that passes
``--timeout`` is stopped and counted at the timeout, so a median that
includes such runs, and a ratio built on it, is a lower bound (marked so).

Per side: the median wall time of the process, its median CPU time, and the
median of the training loop alone (``wall_seconds`` of the train record;
none for a stopped run). The ratio of each condition is the default's median
wall time over one thread's (higher: one thread is faster). On a machine
other people use, "idle" is what it is: the 1-minute load average before and
after each condition is recorded next to the figures.

    python -m benchmarks.cli_threads [--rounds 3] [--steps 400] [--timeout 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.reporting import emit, ratio

SFBENCH = [sys.executable, "-m", "sfbench"]
#: One thread as the default may cost a little on an idle machine (at most 10 %)
#: and must not lose when another process shares the cores.
TARGETS = {"idle": 0.9, "loaded": 1.0}


def child_env() -> dict[str, str]:
    """This environment without what would pick the thread count or track the runs."""
    drop = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "SFBENCH_MLFLOW_EXPERIMENT"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def torch_default_threads() -> int:
    """torch's thread count in a fresh process with no OMP_NUM_THREADS."""
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         env=child_env(), check=True, capture_output=True, text=True).stdout
    return int(out)


@contextmanager
def busy_core():
    """A second process spinning on one core for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let it reach the scheduler's run queue
        yield
    finally:
        proc.terminate()
        proc.wait()


def time_train(workdir: Path, threads: int, steps: int, timeout: float) -> dict:
    """One ``sfbench train`` process: wall and CPU seconds, its training loop's seconds."""
    result = workdir / f"train_{threads}.json"
    result.unlink(missing_ok=True)
    cmd = [*SFBENCH, "train", "--method", "rectified_flow", "--dataset", "8gaussians",
           "--data", str(workdir / "data.npz"), "--steps", str(steps), "--no-progress",
           "--threads", str(threads), "--out", str(workdir / f"model_{threads}.pt"),
           "--result", str(result)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        subprocess.run(cmd, env=child_env(), check=True, capture_output=True, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:  # the child was killed and waited for
        timed_out = True
    wall = timeout if timed_out else time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    train_s = None if timed_out else json.loads(result.read_text())["result"]["wall_seconds"]
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime)
            + (after.ru_stime - before.ru_stime), "train_s": train_s, "timed_out": timed_out,
            "load_before": load}


def summarise(runs: list[dict], timeout: float) -> dict:
    walls = [r["wall_s"] for r in runs]
    trains = [r["train_s"] for r in runs if r["train_s"] is not None]
    median = statistics.median(walls)
    return {
        "runs": runs,
        "wall_s_median": median,
        "cpu_s_median": statistics.median(r["cpu_s"] for r in runs),
        "train_s_median": statistics.median(trains) if trains else None,
        "timed_out": sum(r["timed_out"] for r in runs),
        "median_is_lower_bound": median >= timeout,
    }


def measure(workdir: Path, sides: tuple[int, int], rounds: int, steps: int,
            timeout: float) -> dict:
    """Both sides A, B, A, B, ...; the load average around them; the ratio of the medians."""
    load_before = os.getloadavg()[0]
    runs: dict[int, list[dict]] = {n: [] for n in sides}
    for r in range(rounds):
        for n in sides:
            runs[n].append(time_train(workdir, n, steps, timeout))
            print(f"[cli_threads] round {r + 1}/{rounds}, {n} thread(s): "
                  f"{runs[n][-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    one, default = (summarise(runs[n], timeout) for n in sides)
    return {
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "one_thread": one,
        "default_threads": default,
        "speedup_of_one_thread": default["wall_s_median"] / one["wall_s_median"],
        "speedup_is_lower_bound": default["median_is_lower_bound"],
    }


def run(rounds: int = 3, steps: int = 400, timeout: float = 120.0) -> dict:
    default = torch_default_threads()
    if default == 1:
        raise RuntimeError("torch's default is one thread on this machine: nothing to compare")
    conditions = {}
    with tempfile.TemporaryDirectory(prefix="sfbench-cli-threads-") as tmp:
        workdir = Path(tmp)
        subprocess.run([*SFBENCH, "data", "--dataset", "8gaussians", "--out",
                        str(workdir / "data.npz"), "--result", str(workdir / "data.json")],
                       env=child_env(), check=True, capture_output=True)
        conditions["idle"] = measure(workdir, (1, default), rounds, steps, timeout)
        with busy_core():
            conditions["loaded"] = measure(workdir, (1, default), rounds, steps, timeout)
    return {
        "benchmark": "cli_threads",
        "command": f"sfbench train --method rectified_flow --dataset 8gaussians --steps {steps}",
        "torch_default_threads": default,
        "rounds": rounds,
        "steps": steps,
        "timeout_s": timeout,
        "conditions": conditions,
        "ratios": {
            f"hand_run_one_thread_speedup_{name}": ratio(c["speedup_of_one_thread"], "higher",
                                                         TARGETS[name])
            for name, c in conditions.items()
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    return emit(run(args.rounds, args.steps, args.timeout), args.json)


if __name__ == "__main__":
    main()
