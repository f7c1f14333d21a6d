"""Reading the pipeline's result files into tables.

Every job writes one JSON record ``{"command", "settings", "result",
"environment"}``; the report needs nothing else (no tracking server).
:func:`load_results` sorts the records by kind and flattens them into
:class:`Results`, one pandas DataFrame per kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sfbench.errors import SfbenchError

MODEL_KEYS = ["dataset", "method", "seed"]
REFERENCE_KEYS = ("w2", "w2_std", "mmd", "mmd_std", "fid", "fid_std")


@dataclass
class Results:
    data: pd.DataFrame  # one row per dataset: sizes and seeds of the splits
    reference: pd.DataFrame  # one row per dataset: the W2/MMD/FID noise floor
    train: pd.DataFrame  # one row per model: training settings, loss, wall time
    cells: pd.DataFrame  # one row per model x solver setting: nfe, w2, mmd, fid
    nll: pd.DataFrame  # one row per model: NLL in nats and its settings
    records: dict[str, list[dict]] = field(default_factory=dict)  # raw records by kind
    sample_files: dict[tuple[str, str, int], Path] = field(default_factory=dict)
    data_files: dict[str, Path] = field(default_factory=dict)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.cells["dataset"])) if len(self.cells) else []

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.cells["method"])) if len(self.cells) else []


def read_record(path: str | Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise SfbenchError(f"result file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise SfbenchError(f"result file {path} is not valid JSON: {err}") from None
    if not isinstance(record, dict) or not {"command", "settings", "result"} <= set(record):
        raise SfbenchError(f"{path} is not an sfbench result record")
    record["_path"] = str(path)
    return record


def kind_of(record: dict) -> str:
    command, settings = record["command"], record["settings"]
    if command == "sweep":
        return "reference" if settings.get("mode") == "reference" else "sweep"
    if command == "evaluate":
        return "nll" if "nll_nats" in record["result"] else "evaluate"
    return command


def _model_seed(settings: dict):
    seed = settings.get("seed")
    if seed is None and isinstance(settings.get("model"), dict):
        seed = settings["model"].get("seed")
    return seed


def setting_label(solver: str, steps, tolerance) -> str:
    """"heun, 16 steps" / "dopri5, tol 1e-03": one cell of a sweep."""
    if tolerance is not None and tolerance == tolerance:  # not None, not NaN
        return f"{solver}, tol {tolerance:.0e}"
    return f"{solver}, {int(steps)} steps"


def load_results(paths: list[str | Path]) -> Results:
    """Records of ``paths`` as DataFrames; raises if two records describe one job."""
    by_kind: dict[str, list[dict]] = {}
    for path in paths:
        record = read_record(path)
        by_kind.setdefault(kind_of(record), []).append(record)

    data = pd.DataFrame(
        [
            {k: r["settings"].get(k) for k in ("dataset", "data_seed", "n_train", "n_test", "dim")}
            for r in by_kind.get("data", [])
        ]
    )
    reference = pd.DataFrame(
        [
            {
                "dataset": r["settings"]["dataset"],
                "n_samples": r["settings"]["n_samples"],
                "n_test": r["settings"]["n_test"],
                "reference_seeds": r["settings"].get("reference_seeds"),
                **{k: r["result"].get(k) for k in REFERENCE_KEYS},
            }
            for r in by_kind.get("reference", [])
        ]
    )
    train = pd.DataFrame(
        [
            {
                "dataset": r["settings"]["dataset"],
                "method": r["settings"]["method"],
                "seed": int(r["settings"]["seed"]),
                "train_steps": r["settings"].get("steps"),
                "batch_size": r["settings"].get("batch_size"),
                "lr": r["settings"].get("lr"),
                "network": json.dumps(r["settings"].get("network"), sort_keys=True),
                "final_loss": r["result"].get("final_loss"),
                "train_seconds": r["result"].get("wall_seconds"),
            }
            for r in by_kind.get("train", [])
        ]
    )
    cell_rows, sample_files = [], {}
    for r in by_kind.get("sweep", []):
        s = r["settings"]
        key = (s["dataset"], s["method"], int(s["seed"]))
        out = next((o for o in r.get("outputs", []) if str(o).endswith(".npz")), None)
        if out:
            sample_files[key] = Path(out)
        for c in r["result"]["cells"]:
            cell_rows.append(
                {
                    "dataset": key[0], "method": key[1], "seed": key[2],
                    "solver": c["solver"], "solver_kind": c.get("solver_kind"),
                    "steps": c["steps"], "tolerance": c["tolerance"],
                    "setting": setting_label(c["solver"], c["steps"], c["tolerance"]),
                    "key": c["key"], "nfe": c["nfe"], "w2": c["w2"], "mmd": c["mmd"],
                    "fid": c["fid"], "n_finite": c.get("n_finite"),
                    "n_samples": s["n_samples"], "n_test": s["n_test"],
                    "sample_seconds": c.get("sample_seconds"),
                }
            )
    cells = pd.DataFrame(cell_rows)
    nll = pd.DataFrame(
        [
            {
                "dataset": r["settings"].get("dataset"),
                "method": r["settings"].get("method"),
                "seed": int(_model_seed(r["settings"])),
                "nll_nats": r["result"]["nll_nats"],
                "nll_stderr": r["result"].get("nll_stderr"),
                "nll_nfe": r["result"].get("nll_nfe"),
                "n_test": r["settings"].get("n_test"),
                "nll_settings": json.dumps(r["settings"].get("nll"), sort_keys=True),
            }
            for r in by_kind.get("nll", [])
        ]
    )
    for name, frame, keys in (
        ("data", data, ["dataset"]),
        ("reference", reference, ["dataset"]),
        ("train", train, MODEL_KEYS),
        ("nll", nll, MODEL_KEYS),
        ("sweep cell", cells, [*MODEL_KEYS, "key"]),
    ):
        if len(frame) and frame.duplicated(keys).any():
            dup = frame[frame.duplicated(keys, keep=False)][keys].drop_duplicates()
            raise SfbenchError(f"two {name} results for {dup.to_dict('records')[0]}")
    data_files = {
        r["settings"]["dataset"]: Path(out)
        for r in by_kind.get("data", [])
        for out in r.get("outputs", [])
        if str(out).endswith(".npz")
    }
    return Results(data, reference, train, cells, nll, by_kind, sample_files, data_files)
