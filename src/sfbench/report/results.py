"""Reading the pipeline's result files into tables.

Every job writes one JSON record ``{"command", "settings", "result",
"environment"}``; the report needs nothing else (no tracking server).
:func:`load_results` sorts the records by kind and flattens them into
:class:`Results`, one pandas DataFrame per kind. The metric columns are the
names of the metric registry (:mod:`sfbench.eval.metrics`): a metric
registered there becomes a column here, null where it does not apply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sfbench.errors import SfbenchError
from sfbench.eval.metrics import IMAGE, METRICS, SELECTION, VECTOR
from sfbench.report.manifest import ReportContents

MODEL_KEYS = ["dataset", "method", "seed"]


def metric_names() -> list[str]:
    """The registered metrics, in registration order (read at call time: tests register more)."""
    return list(METRICS)


def reference_keys() -> list[str]:
    """What a reference record holds per metric: the floor, and for images the baseline."""
    return [f"{prefix}{name}{suffix}" for prefix in ("", "baseline_") for name in METRICS
            for suffix in ("", "_std")]


@dataclass
class Results:
    data: pd.DataFrame  # one row per dataset: sizes and seeds of the splits
    reference: pd.DataFrame  # one row per dataset: noise floor (images: FID floor, baseline)
    train: pd.DataFrame  # one row per model: training settings, loss, wall time
    cells: pd.DataFrame  # one row per model x solver setting: nfe, every metric, score
    nll: pd.DataFrame  # one row per model: NLL in nats (images: bits/dim, VLB) and settings
    records: dict[str, list[dict]] = field(default_factory=dict)  # raw records by kind
    sample_files: dict[tuple[str, str, int], Path] = field(default_factory=dict)
    data_files: dict[str, Path] = field(default_factory=dict)
    # one row per model x cell x held-out noise seed: every metric on that seed's draw
    held_out: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.cells["dataset"])) if len(self.cells) else []

    @property
    def image_datasets(self) -> list[str]:
        """Datasets measured through a pinned feature extractor (the registry's image metrics)."""
        if not len(self.cells):
            return []
        return list(dict.fromkeys(self.cells.loc[self.cells["data_kind"] == IMAGE, "dataset"]))

    @property
    def vector_datasets(self) -> list[str]:
        return [d for d in self.datasets if d not in self.image_datasets]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.cells["method"])) if len(self.cells) else []

    @property
    def external_methods(self) -> list[str]:
        """Models sfbench did not train (a preset's ``external`` block), by name."""
        if not len(self.cells):
            return []
        return list(dict.fromkeys(self.cells.loc[self.cells["external"], "method"]))

    def contents(self) -> ReportContents:
        """The files a report of these results consists of (:mod:`sfbench.report.manifest`)."""
        image = self.cells[self.cells["data_kind"] == IMAGE] if len(self.cells) else self.cells
        decomposed = [r["settings"]["dataset"] for r in self.records.get("decompose", [])]
        return ReportContents(
            datasets=tuple(self.vector_datasets),
            image_datasets=tuple(self.image_datasets),
            methods=tuple(self.methods),
            image_methods=tuple(dict.fromkeys(image["method"])) if len(image) else (),
            decompose_datasets=tuple(dict.fromkeys(decomposed)),
        )


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
    command = record["command"]
    if command == "reference":
        return "reference"
    if command == "evaluate":
        return "nll" if "nll_nats" in record["result"] else "evaluate"
    return command


def _model_seed(settings: dict):
    seed = settings.get("seed")
    if seed is None and isinstance(settings.get("model"), dict):
        seed = settings["model"].get("seed")
    return seed


def setting_label(solver: str, steps, tolerance, grid: str | None = None,
                  grid_options: dict | None = None, extra_native: bool = False) -> str:
    """"heun, 16 steps" / "edm_heun, 8 steps, edm grid, native" / "euler, 8 steps, edm grid
    (rho 5)" / "dopri5, tol 1e-03": one sweep cell, with the grid options that differ from the
    grid's defaults; ``extra_native``: a cell of the solver's native setting off the common
    grids."""
    if tolerance is not None and tolerance == tolerance:  # not None, not NaN
        return f"{solver}, tol {tolerance:.0e}"
    label = f"{solver}, {int(steps)} step{'s' if int(steps) != 1 else ''}"
    if grid not in (None, "uniform", "endpoints"):
        label += f", {grid} grid"
    shown = _non_default(grid, grid_options or {})
    if shown:
        label += " (" + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in sorted(shown.items())) + ")"
    return label + (", native" if extra_native else "")


def _non_default(grid: str | None, options: dict) -> dict:
    """The grid options that differ from the grid's registered defaults (the defaults, e.g.
    the uniform grid's trailing lattice or EDM's rho = 7, are in the report's solver table)."""
    from sfbench.solvers.grids import GRIDS

    defaults = GRIDS[grid].defaults if grid in GRIDS else {}
    return {k: v for k, v in options.items() if k not in defaults or defaults[k] != v}


def _number(value) -> float:
    """A metric as float; NaN for null (a metric that does not apply to this data)."""
    return float("nan") if value is None else float(value)


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
                "data_kind": r["settings"].get("data_kind", VECTOR),
                **{k: _number(r["result"].get(k)) for k in reference_keys()},
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
    cell_rows, held_rows, sample_files = [], [], {}
    for r in by_kind.get("sweep", []):
        s = r["settings"]
        key = (s["dataset"], s["method"], int(s["seed"]))
        out = next((o for o in r.get("outputs", []) if str(o).endswith(".npz")), None)
        if out:
            sample_files[key] = Path(out)
        kind = s.get("data_kind", VECTOR)
        common_grids = set(s.get("grids") or ["uniform"])
        for c in r["result"]["cells"]:
            grid = c.get("grid", "endpoints" if c["tolerance"] is not None else "uniform")
            metrics = {m: _number(c.get(m)) for m in metric_names()}
            # common: on one of the sweep's common grids (adaptive cells: their endpoints);
            # native: the solver's own grid, grid options and options (contract B). A cell
            # can be both (euler on the uniform grid); the extra native cells are not common.
            native = bool(c.get("native", False))
            common = not native or c["tolerance"] is not None or grid in common_grids
            grid_options = c.get("grid_options") or {}
            held_rows += _held_out_rows(key, c, s.get("held_out_seeds") or [])
            cell_rows.append(
                {
                    "dataset": key[0], "method": key[1], "seed": key[2], "data_kind": kind,
                    "external": bool((s.get("model") or {}).get("external", False)),
                    "solver": c["solver"], "solver_kind": c.get("solver_kind"),
                    "steps": c["steps"], "tolerance": c["tolerance"], "grid": grid,
                    "setting": setting_label(c["solver"], c["steps"], c["tolerance"], grid,
                                             grid_options, native and not common),
                    "common": common, "native": native,
                    "native_swept": bool(s.get("native", False)),
                    "key": c["key"], "nfe": c["nfe"], **metrics,
                    "score": metrics[SELECTION[kind]],
                    "n_finite": c.get("n_finite"),
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
                "nll_bits_per_dim": _number(r["result"].get("nll_bits_per_dim")),
                "nll_bits_per_dim_stderr": _number(r["result"].get("nll_bits_per_dim_stderr")),
                "vlb_bits_per_dim": _number(r["result"].get("vlb_bits_per_dim_mean")),
                "vlb_bits_per_dim_stderr": _number(r["result"].get("vlb_bits_per_dim_stderr")),
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
    return Results(data, reference, train, cells, nll, by_kind, sample_files, data_files,
                   held_out=pd.DataFrame(held_rows))


def _held_out_rows(model: tuple, cell: dict, seeds: list) -> list[dict]:
    """One row per held-out noise seed of ``cell``: every metric measured on that seed.

    ``cell["held_out"]`` maps a metric to one value per seed of the record's
    ``held_out_seeds`` (contract B); a record without held-out seeds gives none.
    """
    held = cell.get("held_out") or {}
    return [
        {"dataset": model[0], "method": model[1], "seed": model[2], "key": cell["key"],
         "noise_seed": noise_seed,
         **{m: _number(held[m][i]) if m in held and i < len(held[m]) else float("nan")
            for m in metric_names()}}
        for i, noise_seed in enumerate(seeds)
    ]
