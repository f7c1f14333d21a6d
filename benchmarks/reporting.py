"""What every benchmark script adds to its figures and how it emits them."""

from __future__ import annotations

import json
import platform

import torch


def machine() -> dict:
    """The settings of this process that shape a timing."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }


def emit(result: dict, json_path: str | None) -> dict:
    """Print the figures (with the machine) as JSON, and write them to ``json_path``."""
    result = {**result, **machine()}
    print(json.dumps(result, indent=2))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return result
