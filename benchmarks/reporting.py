"""What every benchmark adds to its figures, how it emits them, shared timing helpers."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from sfbench.provenance import cpu_model


def machine() -> dict:
    """The machine and the settings of this process that shape a timing."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "gpu": gpu,
        "python": platform.python_version(),
        "load_average": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def ratio(value: float, better: str, target: float | None = None) -> dict:
    """A guarded figure: ``better`` is "lower" (an overhead) or "higher" (a speed-up)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    return {"value": float(value), "better": better, "target": target}


def emit(result: dict, json_path: str | None) -> dict:
    """Print the figures (with the machine) as JSON, and write them to ``json_path``."""
    result = {**result, "machine": machine()}
    print(json.dumps(result, indent=2))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result


def interleaved_medians(sides: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall seconds of each side, run A, B, A, B, ... so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
