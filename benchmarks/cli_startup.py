"""Start-up cost of the command line: ``sfbench --help`` against a bare ``python -c pass``.

A help text should cost about one interpreter start, not the seconds of CPU
that importing torch takes (building the parser imports no command's
implementation; ``tests/test_cli_startup.py``). Each round runs
``python -c pass``, ``python -m sfbench --help`` and ``python -m sfbench
train --help`` once each, in turn, so machine noise hits all alike; the
figures are the ratios of the median wall times and of the median CPU times
(user + system of the child process). Target: at most 10x.

The children run with Python's bytecode cache, as an installed package does:
``PYTHONDONTWRITEBYTECODE`` (set on some CI and sandbox machines) is dropped
from their environment, so the warm-up run writes ``__pycache__`` and the
timed runs do not recompile sfbench's modules (about 15 ms of CPU per start).

    python -m benchmarks.cli_startup [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

from benchmarks.reporting import emit, ratio

BASELINE = "python -c pass"
COMMANDS = {
    BASELINE: ["-c", "pass"],
    "sfbench --help": ["-m", "sfbench", "--help"],
    "sfbench train --help": ["-m", "sfbench", "train", "--help"],
}
TARGET = 10.0
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_process(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python ARGS``; CPU from the rusage of waited-for children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(rounds: int = 15) -> dict:
    for args in COMMANDS.values():  # warm-up: the page cache
        time_process(args)
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):
        for name, args in COMMANDS.items():
            w, c = time_process(args)
            wall[name].append(w)
            cpu[name].append(c)
    cells = {name: {"wall_ms_median": 1e3 * statistics.median(wall[name]),
                    "cpu_ms_median": 1e3 * statistics.median(cpu[name])} for name in COMMANDS}
    base = cells[BASELINE]
    for cell in cells.values():
        cell["wall_ratio"] = cell["wall_ms_median"] / base["wall_ms_median"]
        cell["cpu_ratio"] = cell["cpu_ms_median"] / base["cpu_ms_median"]
    helped = cells["sfbench --help"]
    return {
        "benchmark": "cli_startup",
        "rounds": rounds,
        "python": sys.executable,
        "commands": cells,
        "ratios": {
            "cli_help_wall_ratio": ratio(helped["wall_ratio"], "lower", TARGET),
            "cli_help_cpu_ratio": ratio(helped["cpu_ratio"], "lower", TARGET),
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    return emit(run(args.rounds), args.json)


if __name__ == "__main__":
    main()
