"""``sfbench decompose``: split a model's sampling error into discretization and learning error.

Only for Gaussian-mixture datasets, whose exact model (the oracle) is known.
For every fixed-step solver x step count, on the same noise: the total W2 of
the model with that solver, the W2 of the oracle with that solver
(discretization; plus, for ODE solvers, the paired RMSE to the oracle's exact
flow), and once per model the W2 of the model's exact flow (dopri5 at a
tight tolerance) and the noise floor. ODE models also get the straightness
and normalized path energy of their flow. :mod:`sfbench.eval.decomposition`
defines every number.
"""

from __future__ import annotations

import argparse
import time

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_model_source, add_result, load_path_model
from sfbench.errors import SfbenchError


def add_parser(sub):
    p = sub.add_parser(
        "decompose", help="total vs discretization vs exact-flow error on Gaussian mixtures",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_source(p)
    p.add_argument("--data", required=True, help=".npz from `sfbench data` (array `test`)")
    p.add_argument("--solvers", nargs="+", required=True, help="fixed-step solvers")
    p.add_argument("--steps", nargs="+", type=positive_int, required=True, help="step counts")
    p.add_argument("--n-samples", type=positive_int, default=1000, help="samples per solve")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed (per sample)")
    p.add_argument("--exact-tolerance", type=float, default=1e-5,
                   help="rtol = atol of the dopri5 solve taken as the exact flow")
    p.add_argument("--floor-seed", type=non_negative_int, default=777,
                   help="first data seed of the independent draws that set the noise floor")
    p.add_argument("--floor-draws", type=positive_int, default=3)
    p.add_argument("--straightness-steps", type=positive_int, default=100,
                   help="RK4 steps of the straightness / path-energy solve")
    add_result(p)
    return p


def _mixture_dataset(name: str | None):
    from sfbench.data import DATASETS, get_dataset

    if not name:
        raise SfbenchError("the model file names no dataset; give --dataset")
    ds = get_dataset(name)
    if ds.mixture is None:
        mixtures = [n for n in DATASETS if get_dataset(n).mixture is not None]
        raise SfbenchError(
            f"decompose needs a Gaussian-mixture dataset ({', '.join(mixtures)}); "
            f"{name!r} has no closed-form oracle"
        )
    return ds


def _oracle_of(model, model_info: dict, mixture):
    """The oracle of the model's path, or (None, why) when its coupling has none.

    An external model declares no coupling; it is taken to model its path's marginals
    (independent coupling), as its ``has_score`` says (sfbench.external.wrappers)."""
    from sfbench.eval.oracle import GaussianMixtureOracle
    from sfbench.methods import get_method

    method_name = model_info["method"]
    if model_info.get("external"):
        return GaussianMixtureOracle(mixture, model.schedule), "oracle of the same path"
    coupling = get_method(method_name).coupling
    if coupling != "independent":
        return None, (
            f"{method_name} is trained on the {coupling!r} coupling, whose marginal velocity "
            "has no closed form; the oracle (independent coupling) would be another flow"
        )
    return GaussianMixtureOracle(mixture, model.schedule), "oracle of the same path"


def run(args) -> dict:
    import torch

    from sfbench.eval.decomposition import decompose, noise_floor
    from sfbench.external import is_external
    from sfbench.io import load_array
    from sfbench.solvers import get_solver
    from sfbench.sweep.cells import cell_key

    if not 0 < args.exact_tolerance < 1:
        raise SfbenchError(f"--exact-tolerance must lie in (0, 1), got {args.exact_tolerance}")
    for solver in args.solvers:
        if get_solver(solver).adaptive:
            raise SfbenchError(f"{solver!r} is adaptive; decompose takes fixed-step solvers")
    if args.model and args.dataset and not is_external(args.model):
        raise SfbenchError("--dataset is for --oracle (or an external --model, whose spec "
                           "may name none); a model file names its own dataset")
    if args.oracle:
        _mixture_dataset(args.dataset)  # the oracle's own check, with this command's message
    tic = time.perf_counter()
    model, model_info = load_path_model(args)
    load_seconds = time.perf_counter() - tic
    ds = _mixture_dataset(model_info.get("dataset"))
    test = load_array(args.data, "test", dim=ds.mixture.dim)

    if args.oracle:  # a check of the machinery: the model is its own oracle
        oracle, oracle_note, model_dtype = model, "the model is the oracle", torch.float64
    else:
        oracle, oracle_note = _oracle_of(model, model_info, ds.mixture)
        model_dtype = None
    cells = [(s, n) for s in args.solvers for n in args.steps]
    cells_note = None
    if model.one_step:
        cells, cells_note = [("euler", 1)], "one-step model: only euler with 1 step"
    elif not model.has_score:
        # sfbench.sampling.check_sampler: no stochastic sampler samples a paired model.
        cells = [c for c in cells if get_solver(c[0]).kind == "ode"]
        cells_note = "model trained on pairs: deterministic solvers only"
    if not cells:
        raise SfbenchError(f"no solver of {args.solvers} can sample a {model_info['method']} model")

    tic = time.perf_counter()
    result = decompose(
        model, oracle, test, cells, args.n_samples, args.seed,
        exact_tolerance=args.exact_tolerance, model_dtype=model_dtype,
    )
    decompose_seconds = time.perf_counter() - tic
    seeds = [args.floor_seed + k for k in range(args.floor_draws)]
    draws = [ds.sample(args.n_samples, s, "test") for s in seeds]
    floor = noise_floor(draws, test)
    tic = time.perf_counter()
    from sfbench.eval.straightness import flow_record

    flow = flow_record(model, args.n_samples, args.seed, args.straightness_steps)
    straightness_seconds = time.perf_counter() - tic

    for row in result.cells:
        row["key"] = cell_key(row["solver"], row["steps"], None)
    common = {"method": model_info.get("method"), "dataset": ds.name,
              "seed": model_info.get("seed")}
    return {
        "command": "decompose",
        "settings": {
            "model": model_info,
            **common,
            "data": args.data,
            "solvers": list(args.solvers),
            "steps": list(args.steps),
            "cells_note": cells_note,
            "oracle_note": oracle_note,
            "floor_seeds": seeds,
            "straightness_steps": args.straightness_steps,
            **result.settings,
        },
        "result": {
            "cells": result.cells,
            "exact_flow_w2": result.exact_flow_w2,
            "exact_flow_nfe": result.exact_flow_nfe,
            "oracle_exact_w2": result.oracle_exact_w2,
            "oracle_exact_nfe": result.oracle_exact_nfe,
            **floor,
            "flow": flow,
            "load_seconds": load_seconds,
            "exact_seconds": result.exact_seconds,
            "decompose_seconds": decompose_seconds,
            "straightness_seconds": straightness_seconds,
        },
        "outputs": [],
    }
