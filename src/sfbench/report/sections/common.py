"""What every section shares: mean ± std cells, labels, CSV files, the sample files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sfbench.eval.metrics import METRICS
from sfbench.io import atomic_write_bytes
from sfbench.report.render import fmt
from sfbench.report.results import Results

FLOAT_FORMAT = "%.6g"  # CSV numbers: stable text, enough digits for every metric

#: Labels of the columns that are not metrics (a metric's label is its registry entry's).
LABELS = {"nfe": "NFE", "nll_nats": "NLL (nats)", "nll_bits_per_dim": "NLL (bits/dim)",
          "vlb_bits_per_dim": "VLB (bits/dim)", "train_seconds": "train time (s)"}


def label(name: str) -> str:
    """The table label of a metric (from the registry) or of another column."""
    return METRICS[name].label if name in METRICS else LABELS[name]


def pm(mean, std) -> str:
    if mean is None or mean != mean:  # a metric that does not apply here: no "± 0"
        return fmt(None)
    return f"{fmt(mean)} ± {fmt(std)}"


def pm_column(frame: pd.DataFrame, name: str) -> list[str]:
    """``{name}_mean ± {name}_std`` of every row, as text."""
    return [pm(m, d) for m, d in zip(frame[f"{name}_mean"], frame[f"{name}_std"], strict=True)]


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return atomic_write_bytes(path, frame.to_csv(index=False, float_format=FLOAT_FORMAT).encode())


def unique(values) -> list:
    """``values`` without repeats (dicts and lists compared by content), in order."""
    seen, keys = [], set()
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key not in keys:
            keys.add(key)
            seen.append(v)
    return seen


def first_seed(res: Results, dataset: str) -> int:
    """The training seed whose samples the figures show."""
    return int(res.cells.loc[res.cells["dataset"] == dataset, "seed"].min())


def load_samples(res: Results, dataset: str, seed: int) -> dict[tuple[str, str], np.ndarray]:
    """``{(method, cell key): samples}`` of one dataset and training seed."""
    out = {}
    for (d, method, s), path in res.sample_files.items():
        if d != dataset or s != seed or not path.is_file():
            continue
        with np.load(path) as z:
            for name in z.files:
                if "__" in name:
                    out[(method, name.replace("__", "/"))] = z[name]
    return out


def load_trajectories(res: Results, dataset: str, seed: int) -> dict:
    """``{method: (trajectory, t)}`` of one dataset and training seed."""
    out = {}
    for (d, method, s), path in res.sample_files.items():
        if d == dataset and s == seed and path.is_file():
            with np.load(path) as z:
                if "trajectory" in z.files:
                    out[method] = (z["trajectory"], z["trajectory_t"])
    return out


def load_test_split(res: Results, dataset: str) -> np.ndarray | None:
    path = res.data_files.get(dataset)
    if path is None or not path.is_file():
        return None
    with np.load(path) as z:
        return z["test"]
