"""``sfbench sweep``: sample one model with every solver x step count, evaluating each cell.

The model (a trained file or the analytic oracle) is loaded once; each
fixed-step solver runs at every ``--steps`` count and each adaptive solver at
every tolerance of ``--adaptive NAME:TOL,TOL`` (rtol = atol). Every sample set
is compared with the test split of ``--data`` (exact W2, unbiased MMD^2,
Frechet distance of the coordinates). Sample i starts from the same noise in
every cell (paired comparisons). ``--out`` holds every cell's samples
(``<solver>__steps<N>`` / ``<solver>__tol<T>``) and, with ``--trajectory``,
the ODE trajectories of the first points of one cell.

``--reference`` measures the noise floor instead: draws of the dataset that
are independent of the test split, of the same size as a sample set,
compared with the test split by the same metrics.

Image models (digits, fashion_mnist, cifar10) are measured by FID and KID
with the dataset's pinned extractor instead (``--classifier`` for the digits;
``--fid-features``: the test split's features cached by the reference job);
their W2 and MMD are null. ``--reference`` on an image dataset gives the FID
floor (train-split subsets) and the Gaussian baseline at the same sample count.

``--grids uniform edm ...`` runs every fixed-step solver on each time grid;
a cell on a grid other than ``uniform`` is keyed ``<solver>/<grid>/steps<N>``.

Inside a tracked job every cell is also a nested MLflow run of the sweep run.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import TYPE_CHECKING

from sfbench.commands.common import add_result, non_negative_int, positive_int
from sfbench.errors import SfbenchError
from sfbench.sweep.cells import cell_key, npz_key

if TYPE_CHECKING:
    import numpy as np

METRICS = ("w2", "mmd", "fid", "kid")
#: The metric a sweep's best cell is chosen by, per kind of data.
SELECTION = {"vector": "w2", "image": "fid"}


def adaptive_spec(text: str) -> tuple[str, list[float]]:
    """``dopri5:1e-3,1e-5`` -> ("dopri5", [1e-3, 1e-5])."""
    name, sep, tols = text.partition(":")
    try:
        values = [float(t) for t in tols.split(",") if t]
    except ValueError:
        values = []
    if not sep or not name or not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected SOLVER:TOL[,TOL...] with 0 < TOL < 1, got {text!r}"
        )
    return name, values


def trajectory_spec(text: str) -> tuple[str, int, int]:
    """``heun:32:200`` -> ("heun", 32, 200)."""
    parts = text.split(":")
    try:
        solver, steps, n_points = parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        solver, steps, n_points = "", 0, 0
    if len(parts) != 3 or not solver or steps < 1 or n_points < 1:
        raise argparse.ArgumentTypeError(f"expected SOLVER:STEPS:N_POINTS, got {text!r}")
    return solver, steps, n_points


def straightness_spec(text: str) -> tuple[int, int]:
    """``500:100`` -> (500, 100)."""
    parts = text.split(":")
    try:
        n_points, steps = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        n_points, steps = 0, 0
    if len(parts) != 2 or n_points < 1 or steps < 1:
        raise argparse.ArgumentTypeError(f"expected N_POINTS:STEPS (positive), got {text!r}")
    return n_points, steps


def add_parser(sub):
    p = sub.add_parser(
        "sweep", help="sample one model over solvers x step counts and evaluate every cell",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("what to sample")
    choice = src.add_mutually_exclusive_group(required=True)
    choice.add_argument("--model", help="model file written by `sfbench train`")
    choice.add_argument("--oracle", action="store_true", help="the exact Gaussian-mixture model")
    choice.add_argument(
        "--reference", action="store_true",
        help="independent draws of the dataset itself (the metrics' noise floor)",
    )
    src.add_argument("--method", help="path of the oracle")
    src.add_argument("--dataset", help="dataset of the oracle or the reference")
    p.add_argument("--data", required=True, help=".npz from `sfbench data` (array `test`)")
    p.add_argument(
        "--solvers", nargs="+", default=[],
        help="fixed-step solvers, each run at every --steps ('none' for no fixed-step solver)",
    )
    p.add_argument("--steps", nargs="+", type=positive_int, default=[], help="step counts")
    p.add_argument("--grids", nargs="+", default=["uniform"],
                   help="time grids of the fixed-step solvers (uniform, edm, logsnr)")
    p.add_argument(
        "--adaptive", type=adaptive_spec, action="append", default=[], metavar="SOLVER:TOL,...",
        help="an adaptive solver and its tolerances, rtol = atol (repeatable)",
    )
    p.add_argument("--n-samples", type=positive_int, help="samples per cell (default: n_test)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="noise seed (model) or first data seed of the reference draws")
    p.add_argument("--reference-draws", type=positive_int, default=3,
                   help="independent draws averaged by --reference")
    p.add_argument("--trajectory", type=trajectory_spec, metavar="SOLVER:STEPS:N_POINTS",
                   help="also store the trajectories of the first N_POINTS samples of one cell")
    p.add_argument(
        "--straightness", type=straightness_spec, metavar="N_POINTS:STEPS",
        help="also measure the straightness and normalized path energy of the model's flow "
             "on N_POINTS trajectories (RK4, STEPS steps, the sweep's noise seed)",
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="sampling device")
    p.add_argument("--out", help=".npz of every cell's samples (required unless --reference)")
    p.add_argument("--plot", help="PNG of sample scatter plots, one panel per cell")
    images = p.add_argument_group("images (FID / KID)")
    images.add_argument("--data-dir", help="where image datasets' files are")
    images.add_argument("--classifier", help="digits classifier file (digits FID)")
    images.add_argument("--fid-features", help="cached features of the FID reference split "
                        "(written by --reference, read by model sweeps)")
    images.add_argument("--kid-subsets", type=positive_int, default=100)
    images.add_argument("--kid-subset-size", type=positive_int, default=1000)
    images.add_argument("--fid-device", default="cpu", choices=("cpu", "cuda"),
                        help="device of the feature extractor")
    nll = p.add_argument_group(
        "likelihood in the same process (saves a process start per model; 2-D data)"
    )
    nll.add_argument("--nll-result", help="also write the record of `sfbench evaluate --nll` "
                     "for this model here (NLL in nats of test points, dopri5)")
    nll.add_argument("--nll-points", type=positive_int, help="test points of the NLL")
    nll.add_argument("--nll-rtol", type=float, default=1e-5, help="dopri5 rtol of the NLL ODE")
    nll.add_argument("--nll-atol", type=float, default=1e-5, help="dopri5 atol of the NLL ODE")
    add_result(p)
    return p


def nll_record(args) -> dict:
    """The record ``sfbench evaluate --nll`` would write for ``args.model``, computed here.

    The evaluate command's own parser and ``run`` produce it, so the file is
    the same whichever process wrote it; inside a tracked sweep it is also a
    child run ``nll`` of the sweep run.
    """
    from sfbench.commands import evaluate
    from sfbench.io import environment

    argv = ["--nll", "--data", args.data, "--rtol", repr(args.nll_rtol),
            "--atol", repr(args.nll_atol), "--result", args.nll_result]
    argv += ["--model", args.model] if args.model else [
        "--oracle", "--method", args.method, "--dataset", args.dataset]
    if args.nll_points:
        argv += ["--n-test", str(args.nll_points)]
    parser = evaluate.add_parser(argparse.ArgumentParser(prog="sfbench").add_subparsers())
    record = {**evaluate.run(parser.parse_args(argv)), "environment": environment()}
    args.log_child("nll", record["settings"], record["result"])
    return record


def sample_metrics(
    samples: np.ndarray, test: np.ndarray, mmd_to_test=None
) -> dict[str, float | None]:
    """W2, MMD^2 and coordinate FID (KID: null); NaN if a sample is not finite.

    ``mmd_to_test``: an :class:`~sfbench.eval.distances.MMDAgainst` of ``test``,
    reused across calls (built here when None).
    """
    import numpy as np

    from sfbench.eval.distances import MMDAgainst, frechet_distance_coords, wasserstein2

    finite = np.isfinite(samples).all(axis=1)
    if not finite.all():
        return {"w2": math.nan, "mmd": math.nan, "fid": math.nan, "kid": None}
    mmd_to_test = mmd_to_test or MMDAgainst(test)
    return {
        "w2": wasserstein2(samples, test),
        "mmd": mmd_to_test(samples),
        "fid": frechet_distance_coords(samples, test),
        "kid": None,
    }


class ImageMetrics:
    """FID / KID of image samples with the dataset's pinned extractor (W2, MMD: null).

    The extractor is loaded once; the reference features come from
    ``--fid-features`` (read only: a sweep never rewrites the reference job's file).
    """

    def __init__(self, dataset, args):
        from sfbench.eval.fid import extractor_name, get_extractor

        self.dataset = dataset
        self.extractor = get_extractor(extractor_name(dataset), args.classifier, dataset.dim)
        self.options = dict(
            cache_file=args.fid_features, write_cache=False, kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size, device=args.fid_device,
        )
        self.protocol: dict | None = None

    def __call__(self, samples: np.ndarray) -> dict[str, float | None]:
        import numpy as np

        from sfbench.eval.fid import fid_kid

        nan = {"w2": None, "mmd": None, "fid": math.nan, "kid": math.nan, "kid_std": math.nan}
        if not np.isfinite(samples).all():
            return nan
        res = fid_kid(samples, self.dataset, self.extractor, **self.options)
        self.protocol = self.protocol or res["protocol"]
        return {**nan, "fid": res["fid"], "kid": res["kid_mean"], "kid_std": res["kid_std"]}


def _image_dataset(name, data_dir):
    """The dataset ``name`` if it holds discrete images (FID / KID), else None."""
    from sfbench.data import get_dataset

    ds = get_dataset(name, data_dir) if name else None
    return ds if ds is not None and ds.levels is not None else None


def _cells(args) -> list[tuple[str, int | None, float | None, str]]:
    solvers = [] if args.solvers == ["none"] else args.solvers
    if solvers and not args.steps:
        raise SfbenchError("--solvers needs --steps")
    grids = list(dict.fromkeys(args.grids))
    cells = [(s, n, None, g) for s in solvers for g in grids for n in args.steps]
    cells += [(name, None, tol, "endpoints") for name, tols in args.adaptive for tol in tols]
    if not cells:
        raise SfbenchError("nothing to sample: give --solvers with --steps, or --adaptive")
    return cells


def _check_solvers(cells, trajectory, grids) -> None:
    from sfbench.solvers import get_grid
    from sfbench.solvers.registry import get_solver

    for grid in grids:
        get_grid(grid)  # ValueError naming the valid grids
    for solver, steps, _tol, _grid in cells:
        spec = get_solver(solver)
        if spec.adaptive != (steps is None):
            kind = "adaptive (use --adaptive)" if spec.adaptive else "fixed-step (use --solvers)"
            raise SfbenchError(f"solver {solver!r} is {kind}")
    if trajectory and get_solver(trajectory[0]).adaptive:
        raise SfbenchError("--trajectory needs a fixed-step solver")


def run_image_reference(args, ds) -> dict:
    """FID floor (train-split subsets) and Gaussian baseline; writes the reference features."""
    from sfbench.eval.fid import extractor_name, get_extractor, image_reference

    if not args.n_samples:
        raise SfbenchError("--reference on images needs --n-samples (the sweep's sample count)")
    extractor = get_extractor(extractor_name(ds), args.classifier, ds.dim)
    res = image_reference(
        ds, extractor, args.n_samples, args.seed, draws=args.reference_draws,
        cache_file=args.fid_features, kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size, device=args.fid_device,
    )
    protocol = res.pop("protocol")
    result = {
        "w2": None, "w2_std": None, "mmd": None, "mmd_std": None,
        "fid": res["floor_fid"], "fid_std": res["floor_fid_std"],
        "kid": res["floor_kid"], "kid_std": res["floor_kid_std"],
        "baseline_fid": res["baseline_fid"], "baseline_fid_std": res["baseline_fid_std"],
        "baseline_kid": res["baseline_kid"], "baseline_kid_std": res["baseline_kid_std"],
        "draws": res["floor"], "baseline_draws": res["baseline"],
    }
    return {
        "command": "sweep",
        "settings": {
            "mode": "reference",
            "data_kind": "image",
            "dataset": ds.name,
            "data": args.data,
            "n_samples": args.n_samples,
            "n_test": protocol["n_reference"],
            "reference_seeds": [args.seed + k for k in range(args.reference_draws)],
            "floor": "random subsets of the train split, one per seed",
            "baseline": "N(mean, covariance) of the train split's pixels, one draw set per seed",
            "fid_protocol": protocol,
        },
        "result": result,
        "outputs": [args.fid_features] if args.fid_features else [],
    }


def run_reference(args, test: np.ndarray) -> dict:
    import numpy as np

    from sfbench.data import get_dataset

    if not args.dataset:
        raise SfbenchError("--reference needs --dataset")
    image = _image_dataset(args.dataset, args.data_dir)
    if image is not None:
        return run_image_reference(args, image)
    ds = get_dataset(args.dataset)
    n = args.n_samples or test.shape[0]
    draws = []
    for k in range(args.reference_draws):
        # A data seed other than the test split's, so the draw is independent of it.
        x = ds.sample(n, args.seed + k, "test")
        draws.append({"data_seed": args.seed + k, **sample_metrics(x, test)})
    result = {"draws": draws}
    for name in ("w2", "mmd", "fid"):
        values = np.array([d[name] for d in draws])
        result[name] = float(values.mean())
        result[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {
        "command": "sweep",
        "settings": {
            "mode": "reference",
            "data_kind": "vector",
            "dataset": ds.name,
            "data": args.data,
            "n_samples": n,
            "n_test": int(test.shape[0]),
            "reference_seeds": [args.seed + k for k in range(args.reference_draws)],
        },
        "result": result,
        "outputs": [],
    }


def run(args) -> dict:
    from sfbench.io import load_array, save_npz, write_json

    test = load_array(args.data, "test")
    if args.reference:
        return run_reference(args, test)
    if not args.out:
        raise SfbenchError("--out is required (the samples of every cell)")
    cells = _cells(args)
    _check_solvers(cells, args.trajectory, args.grids)

    import numpy as np
    import torch

    from sfbench.commands.common import load_path_model
    from sfbench.sampling import generate

    tic = time.perf_counter()
    model, model_info = load_path_model(args)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SfbenchError("--device cuda but no CUDA device is available")
        model = model.to("cuda")
    load_seconds = time.perf_counter() - tic
    image = _image_dataset(model_info.get("dataset"), args.data_dir)
    kind = "vector" if image is None else "image"
    if image is not None:
        metrics_of = ImageMetrics(image, args)
        test = test.reshape(test.shape[0], -1)
    else:
        from sfbench.eval.distances import MMDAgainst

        mmd_to_test = MMDAgainst(test)

        def metrics_of(samples):
            return sample_metrics(samples, test, mmd_to_test)
    n = args.n_samples or int(test.shape[0])
    tracker = args.log_child
    common = {
        "method": model_info.get("method"),
        "dataset": model_info.get("dataset"),
        "seed": model_info.get("seed"),
    }

    arrays: dict[str, np.ndarray] = {}
    rows = []
    sampling_settings = None
    for solver, steps, tol, grid in cells:
        options = {} if tol is None else {"rtol": tol, "atol": tol}
        grid_arg = {} if tol is not None else {"grid": grid}
        res = generate(model, solver, steps, n, args.seed, **grid_arg, **options)
        samples = res.samples.numpy().astype(np.float32)
        tic = time.perf_counter()
        metrics = metrics_of(samples)
        eval_seconds = time.perf_counter() - tic
        key = cell_key(solver, steps, tol, grid)
        arrays[npz_key(key)] = samples
        row = {
            "key": key,
            "solver": solver,
            "solver_kind": res.settings["solver_kind"],
            "steps": steps,
            "tolerance": tol,
            "grid": res.settings["grid"],
            "options": res.settings["options"],
            "nfe": int(res.nfe),
            "sample_seconds": float(res.wall_seconds),
            "eval_seconds": eval_seconds,
            "n_finite": int(np.isfinite(samples).all(axis=1).sum()),
            **metrics,
        }
        rows.append(row)
        sampling_settings = sampling_settings or {
            k: v for k, v in res.settings.items()
            if k not in ("solver", "solver_kind", "steps", "options", "grid", "grid_options")
        }
        if tracker is not None:
            cell_settings = {
                **common, "solver": solver, "steps": steps, "grid": row["grid"],
                "options": res.settings["options"], "n_samples": n,
                "n_test": int(test.shape[0]), "sampling_seed": args.seed,
            }
            cell_result = {
                k: row[k] for k in ("nfe", "sample_seconds", "n_finite", *METRICS, "kid_std")
                if row.get(k) is not None
            }
            tracker(key, cell_settings, cell_result)

    trajectory_info = None
    if args.trajectory:
        solver, steps, n_points = args.trajectory
        grid = args.grids[0]
        res = generate(model, solver, steps, min(n_points, n), args.seed, grid=grid,
                       record_trajectory=True)
        arrays["trajectory"] = res.trajectory.numpy().astype(np.float32)
        arrays["trajectory_t"] = res.grid.numpy()  # the times the states were taken at
        trajectory_info = {"solver": solver, "steps": steps, "grid": grid,
                           "n_points": min(n_points, n)}
    flow, straightness_seconds = None, 0.0
    if args.straightness:
        from sfbench.eval.straightness import flow_record

        n_points, steps = args.straightness
        tic = time.perf_counter()
        flow = flow_record(model, min(n_points, n), args.seed, steps)
        straightness_seconds = time.perf_counter() - tic
    save_npz(args.out, **arrays)

    outputs = [args.out]
    if args.nll_result:
        write_json(args.nll_result, nll_record(args))
        outputs.append(args.nll_result)
    if args.plot:
        from sfbench.report.plots import save_image_sweep_grid, save_sweep_grid

        if image is None:
            save_sweep_grid(args.plot, arrays, rows, test, title=_title(model_info))
        else:
            save_image_sweep_grid(args.plot, arrays, rows, image.shape, title=_title(model_info))
        outputs.append(args.plot)

    select = SELECTION[kind]
    finite = [r for r in rows if r[select] is not None and math.isfinite(r[select])]
    best = min(finite, key=lambda r: r[select]) if finite else None
    result = {
        "cells": rows,
        "n_cells": len(rows),
        "n_cells_finite": len(finite),
        "selection_metric": select,
        "load_seconds": load_seconds,
        "sample_seconds": sum(r["sample_seconds"] for r in rows),
        "eval_seconds": sum(r["eval_seconds"] for r in rows),
    }
    if flow is not None:
        result.update(flow=flow, straightness_seconds=straightness_seconds)
    if best is not None:
        result.update(best_key=best["key"], best_nfe=best["nfe"],
                      **{f"best_{m}": best[m] for m in METRICS})
    settings = {
        "mode": "model",
        "data_kind": kind,
        "model": model_info,
        **common,
        "data": args.data,
        "n_samples": n,
        "n_test": int(test.shape[0]),
        "sampling_seed": args.seed,
        "solvers": sorted({c[0] for c in cells if c[2] is None}),
        "steps": list(args.steps),
        "grids": list(dict.fromkeys(args.grids)),
        "adaptive": {name: tols for name, tols in args.adaptive},
        "trajectory": trajectory_info,
        "sampling": sampling_settings,
        "device": args.device,
    }
    if image is not None:
        settings["fid_protocol"] = metrics_of.protocol
    return {"command": "sweep", "settings": settings, "result": result, "outputs": outputs}


def _title(info: dict) -> str:
    if info.get("source") == "oracle":
        return f"oracle / {info.get('method')} / {info.get('dataset')}"
    return f"{info.get('dataset')} / {info.get('method')} / seed {info.get('seed')}"
