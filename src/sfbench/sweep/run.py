"""The sweep loop: sample one model in every cell of a :class:`SweepConfig` and measure each.

Sample i starts from the same noise in every cell (:func:`sfbench.sampling.generate`
draws it from (seed, i) only), so cells are compared on paired samples. Each
sample set is scored by an evaluator of the metric registry against the test
split (vector data) or the dataset's pinned extractor (images); a metric added
to :data:`sfbench.eval.metrics.METRICS` therefore appears in every cell row
without a change here.

Every cell is sampled on the selection seed (``config.seed``: its samples are
stored and its metrics choose the best cell) and again on each held-out seed
(only scored: the row's ``held_out`` values, the figures the report gives), so
the reported figure of the chosen cell never comes from the draw that chose it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sfbench.sweep.cells import npz_key
from sfbench.sweep.config import Cell, SweepConfig
from sfbench.sweep.record import CellResult, SweepRecord

if TYPE_CHECKING:
    import numpy as np

#: generate's settings that differ between cells (recorded per cell, not once).
_PER_CELL = ("solver", "solver_kind", "steps", "options", "grid", "grid_options")


def run_sweep(
    model: Any,
    test: np.ndarray,
    config: SweepConfig,
    *,
    image: Any = None,
    metrics: Callable[[np.ndarray], dict] | None = None,
    on_cell: Callable[[Cell, CellResult], None] | None = None,
    model_info: dict | None = None,
    data: str | None = None,
) -> tuple[SweepRecord, dict[str, np.ndarray]]:
    """Sample and score every cell of ``config``; the record and the arrays of the samples file.

    Args:
        model: a path model (a network or the oracle), already on its device.
        test: the test split, ``[M, D]`` (images: any shape, flattened here).
        config: the sweep's settings; its cells are validated before sampling.
        image: an :class:`~sfbench.eval.metrics.ImageReference` when the model's
            data are images (FID / KID), else None (vector data).
        metrics: samples ``[N, D]`` -> metric values; default the registry's
            :func:`~sfbench.eval.metrics.evaluator` of the data's kind.
        on_cell: called as ``(cell, row)`` after each cell (child runs).
        model_info, data: what the record's settings name as model and data file.

    Returns:
        The :class:`SweepRecord` and ``{npz member: array}``: every cell's
        samples (:func:`~sfbench.sweep.cells.npz_key`), and with a trajectory
        ``trajectory`` / ``trajectory_t``.
    """
    import numpy as np

    from sfbench.eval.metrics import evaluator
    from sfbench.sampling import generate

    cells = config.cells()
    kind = "vector" if image is None else "image"
    if image is not None:
        test = test.reshape(test.shape[0], -1)
    metrics = metrics or evaluator(kind, test if image is None else image)
    n = config.n_samples or int(test.shape[0])

    arrays: dict[str, np.ndarray] = {}
    rows: list[CellResult] = []
    sampling = None
    for cell in cells:
        res = generate(model, cell.solver, cell.steps, n, config.seed, **cell.generate_options())
        samples = res.samples.numpy().astype(np.float32)
        tic = time.perf_counter()
        values = metrics(samples)
        eval_seconds = time.perf_counter() - tic
        arrays[npz_key(cell.key)] = samples
        tic = time.perf_counter()
        held_out = _held_out(model, cell, n, config.held_out_seeds, metrics)
        row = CellResult(
            key=cell.key, solver=cell.solver, solver_kind=res.settings["solver_kind"],
            steps=cell.steps, tolerance=cell.tolerance, grid=res.settings["grid"],
            options=res.settings["options"], nfe=int(res.nfe),
            sample_seconds=float(res.wall_seconds), eval_seconds=eval_seconds,
            n_finite=int(np.isfinite(samples).all(axis=1).sum()), metrics=values,
            grid_options=res.settings["grid_options"], native=cell.native, held_out=held_out,
            held_out_seconds=time.perf_counter() - tic,
        )
        rows.append(row)
        sampling = sampling or {k: v for k, v in res.settings.items() if k not in _PER_CELL}
        if on_cell is not None:
            on_cell(cell, row)

    trajectory = None
    if config.trajectory:
        t = config.trajectory
        grid, n_points = config.grids[0], min(t.n_points, n)
        res = generate(model, t.solver, t.steps, n_points, config.seed, grid=grid,
                       record_trajectory=True, **config.options.get(t.solver, {}))
        arrays["trajectory"] = res.trajectory.numpy().astype(np.float32)
        arrays["trajectory_t"] = res.grid.numpy()  # the times the states were taken at
        trajectory = {"solver": t.solver, "steps": t.steps, "grid": grid, "n_points": n_points}

    flow, straightness_seconds = None, 0.0
    if config.straightness:
        from sfbench.eval.straightness import flow_record

        tic = time.perf_counter()
        flow = flow_record(model, min(config.straightness.n_points, n), config.seed,
                           config.straightness.steps)
        straightness_seconds = time.perf_counter() - tic

    info = model_info or {}
    settings = {
        "mode": "model",
        "data_kind": kind,
        "model": info,
        **shared_settings(info),
        "data": data,
        "n_samples": n,
        "n_test": int(test.shape[0]),
        "sampling_seed": config.seed,  # the selection seed
        "held_out_seeds": list(config.held_out_seeds),
        "native": config.native,
        "solvers": sorted({c.solver for c in cells if c.tolerance is None}),
        "steps": list(config.steps),
        "grids": list(dict.fromkeys(config.grids)),
        "adaptive": {name: list(tols) for name, tols in config.adaptive.items()},
        "trajectory": trajectory,
        "sampling": sampling,
        "device": config.device,
    }
    if config.options:
        settings["solver_options"] = config.options
    if image is not None:
        settings["fid_protocol"] = image.protocol
    record = SweepRecord(kind=kind, cells=rows, settings=settings, flow=flow,
                         straightness_seconds=straightness_seconds)
    return record, arrays


def _held_out(model: Any, cell: Cell, n: int, seeds: list[int],
              metrics: Callable) -> dict[str, list]:
    """metric -> its value on each of ``seeds`` (in order): ``cell`` sampled afresh on each
    seed and scored; the samples are not kept (the selection draw's stand for the cell)."""
    from sfbench.sampling import generate

    draws = [metrics(generate(model, cell.solver, cell.steps, n, seed,
                              **cell.generate_options()).samples.numpy().astype("float32"))
             for seed in seeds]
    names = dict.fromkeys(name for values in draws for name in values)
    # a metric missing on a draw is None there, so every list stays aligned with ``seeds``
    return {name: [values.get(name) for values in draws] for name in names}


def shared_settings(model_info: dict) -> dict:
    """The model's method, dataset and seed, which the sweep and each cell's child run name."""
    return {k: model_info.get(k) for k in ("method", "dataset", "seed")}
