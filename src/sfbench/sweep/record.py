"""The record of a sweep: one :class:`CellResult` per cell, gathered in a :class:`SweepRecord`.

:meth:`SweepRecord.to_json` is the dict ``sfbench sweep --result`` writes and
the report reads (CONTRACTS item 5): every cell row holds every key of the
metric registry (None where a metric does not apply to the data), and the
result names the best cell by the registry's selection metric of the data's
kind (W2 for vector data, FID for images), with ``best_<name>`` of every
registered metric. :meth:`SweepRecord.from_json` reads such a dict back.

Noise seeds: a row's metrics are those of the selection seed
(``settings["sampling_seed"]``), which choose the best cell; its ``held_out``
holds every metric on each of ``settings["held_out_seeds"]`` (the figures to
report), and the result's ``best_held_out`` summarises them for the best cell.
Records written before held-out seeds read back with ``held_out`` empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: The fixed fields of a cell row, in the order a record lists them; the rest are metrics.
#: ``sample_seconds`` / ``eval_seconds`` are the selection draw's (comparable with records
#: without held-out seeds); ``held_out_seconds`` is sampling + scoring of every held-out draw.
CELL_FIELDS = ("key", "solver", "solver_kind", "steps", "tolerance", "grid", "grid_options",
               "options", "native", "nfe", "sample_seconds", "eval_seconds", "held_out_seconds",
               "n_finite", "held_out")
#: What a record written before a field existed means by its absence.
_ABSENT = {"grid_options": {}, "native": False, "held_out_seconds": 0.0, "held_out": {}}


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def summary(values: list[float]) -> dict:
    """``{"mean", "std", "n"}`` of finite ``values`` (std: sample std, None below 2 values;
    mean None without any)."""
    n = len(values)
    mean = sum(values) / n if n else None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


@dataclass
class CellResult:
    """One row of a sweep: how a cell was sampled and what its samples measured."""

    key: str
    solver: str
    solver_kind: str
    steps: int | None
    tolerance: float | None
    grid: str
    options: dict
    nfe: int
    sample_seconds: float
    eval_seconds: float
    n_finite: int
    metrics: dict[str, float | None] = field(default_factory=dict)  # the selection seed's
    grid_options: dict = field(default_factory=dict)
    native: bool = False
    #: metric -> one value per held-out seed, in the order of settings["held_out_seeds"]
    held_out: dict[str, list[float | None]] = field(default_factory=dict)
    held_out_seconds: float = 0.0

    def to_json(self) -> dict:
        return {**{k: getattr(self, k) for k in CELL_FIELDS}, **self.metrics}

    @classmethod
    def from_json(cls, row: dict) -> CellResult:
        return cls(**{k: row.get(k, _ABSENT[k]) if k in _ABSENT else row[k]
                      for k in CELL_FIELDS},
                   metrics={k: v for k, v in row.items() if k not in CELL_FIELDS})

    def held_out_values(self, metric: str) -> list[float]:
        """The finite values of ``metric`` on the held-out seeds (none in older records)."""
        return _finite(self.held_out.get(metric, []))

    def held_out_mean(self, metric: str) -> float | None:
        """Mean of :meth:`held_out_values` (None without a finite one)."""
        return summary(self.held_out_values(metric))["mean"]

    def score(self, metric: str) -> float | None:
        """The value of ``metric`` if it is a finite number, else None."""
        value = self.metrics.get(metric)
        return value if value is not None and math.isfinite(value) else None

    def child_run(self, common: dict) -> tuple[str, dict, dict]:
        """(name, settings, result) of this cell as a nested run of the sweep's tracked run
        (``args.log_child``); ``common``: the sweep's settings every cell shares."""
        settings = {**common, "solver": self.solver, "steps": self.steps, "grid": self.grid,
                    "grid_options": self.grid_options, "options": self.options,
                    "native": self.native}
        held_out = {f"held_out_{k}": self.held_out_mean(k) for k in self.held_out}
        result = {"nfe": self.nfe, "sample_seconds": self.sample_seconds,
                  "n_finite": self.n_finite,
                  **{k: v for k, v in {**self.metrics, **held_out}.items() if v is not None}}
        return self.key, settings, result


@dataclass
class SweepRecord:
    """Everything ``sfbench sweep`` records of one model.

    ``settings`` is the record's settings mapping as written (model, data,
    cells' configuration, the sampling settings common to every cell);
    ``flow`` the straightness record when measured.
    """

    kind: str  # "vector" | "image"
    cells: list[CellResult]
    settings: dict
    load_seconds: float = 0.0
    flow: dict | None = None
    straightness_seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)

    @property
    def selection_metric(self) -> str:
        from sfbench.eval.metrics import SELECTION

        return SELECTION[self.kind]

    def finite_cells(self) -> list[CellResult]:
        return [c for c in self.cells if c.score(self.selection_metric) is not None]

    @property
    def best(self) -> CellResult | None:
        """The cell with the lowest finite selection metric (the first on ties), if any."""
        finite = self.finite_cells()
        return min(finite, key=lambda c: c.score(self.selection_metric)) if finite else None

    def to_json(self) -> dict:
        from sfbench.eval.metrics import METRICS

        result: dict[str, Any] = {
            "cells": [c.to_json() for c in self.cells],
            "n_cells": len(self.cells),
            "n_cells_finite": len(self.finite_cells()),
            "selection_metric": self.selection_metric,
            "load_seconds": self.load_seconds,
            "sample_seconds": sum(c.sample_seconds for c in self.cells),
            "eval_seconds": sum(c.eval_seconds for c in self.cells),
            "held_out_seconds": sum(c.held_out_seconds for c in self.cells),
        }
        if self.flow is not None:
            result.update(flow=self.flow, straightness_seconds=self.straightness_seconds)
        best = self.best
        if best is not None:
            result.update(best_key=best.key, best_nfe=best.nfe,
                          **{f"best_{m}": best.metrics.get(m) for m in METRICS})
            # The best cell's reported figures: its held-out draws only, never the
            # selection draw that chose it.
            result["best_held_out"] = {m: summary(best.held_out_values(m))
                                       for m in best.held_out if best.held_out_values(m)}
        return {"command": "sweep", "settings": self.settings, "result": result,
                "outputs": list(self.outputs)}

    @classmethod
    def from_json(cls, record: dict) -> SweepRecord:
        result = record["result"]
        return cls(
            kind=record["settings"]["data_kind"],
            cells=[CellResult.from_json(row) for row in result["cells"]],
            settings=record["settings"],
            load_seconds=result["load_seconds"],
            flow=result.get("flow"),
            straightness_seconds=result.get("straightness_seconds", 0.0),
            outputs=list(record.get("outputs", [])),
        )
