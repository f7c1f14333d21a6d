"""``sfbench reflow-pairs``: (noise, ODE solution) pairs of a trained flow (reflow, distillation).

Pair i is (x0, x1) = (z_i, ODE(z_i)): z_i the seed's noise i at t = 0 and x1
the model's ODE solution at t = 1 (t = 0 noise, t = 1 data). The same model
file, seed and solver settings give the same file, byte for byte. The result
records every setting and the sha256 of the model file.
"""

from __future__ import annotations

import argparse

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_result


def add_parser(sub):
    p = sub.add_parser(
        "reflow-pairs", help="generate (noise, sample) pairs from a trained flow",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="model file of the flow (`sfbench train`)")
    p.add_argument("--n-pairs", type=positive_int, required=True)
    p.add_argument("--seed", type=non_negative_int, required=True, help="noise seed (per pair)")
    p.add_argument("--solver", default="rk4", help="a deterministic solver (default rk4)")
    p.add_argument("--steps", type=positive_int, help="solver steps (fixed-step solvers)")
    p.add_argument("--rtol", type=float, help="relative tolerance (adaptive solvers)")
    p.add_argument("--atol", type=float, help="absolute tolerance (adaptive solvers)")
    p.add_argument("--batch-size", type=positive_int, help="pairs per solve (default all)")
    p.add_argument("--out", required=True, help=".npz with arrays x0, x1 (and the settings)")
    add_result(p)
    return p


def run(args) -> dict:
    from sfbench.checkpoint import load_model
    from sfbench.errors import SfbenchError
    from sfbench.reflow import file_sha256, generate_pairs, save_pairs
    from sfbench.solvers import get_solver

    spec = get_solver(args.solver)  # unknown names fail before the model is loaded
    if spec.adaptive and args.steps is not None:
        raise SfbenchError(f"{args.solver} is adaptive: give --rtol/--atol, not --steps")
    if not spec.adaptive and args.steps is None:
        raise SfbenchError(f"{args.solver} needs --steps")
    if not spec.adaptive and (args.rtol is not None or args.atol is not None):
        raise SfbenchError(f"--rtol/--atol are for adaptive solvers, not {args.solver}")
    options = {k: getattr(args, k) for k in ("rtol", "atol") if getattr(args, k) is not None}
    model = load_model(args.model)
    pairs = generate_pairs(
        model, args.n_pairs, args.seed, solver=args.solver, steps=args.steps,
        batch_size=args.batch_size, **options,
    )
    source = {
        "path": args.model,
        "sha256": file_sha256(args.model),
        "method": model.method.name,
        **{k: model.meta.get(k) for k in ("dataset", "seed")},
    }
    pairs.settings["source_model"] = source
    save_pairs(args.out, pairs)
    return {
        "command": "reflow-pairs",
        "settings": {
            **pairs.settings,
            "method": model.method.name,
            "dataset": source["dataset"],
            "model_seed": source["seed"],
        },
        "result": {
            "nfe": pairs.nfe,
            "sample_seconds": pairs.sample_seconds,
            "mean_squared_displacement": float(((pairs.x1 - pairs.x0) ** 2).sum(1).mean()),
        },
        "outputs": [args.out],
    }
