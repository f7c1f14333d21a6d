"""``sfbench sample``: draw samples from a trained model or the oracle with one solver.

``--grid`` names the time grid of a fixed-step solver (the sweep's ``grids``);
adaptive solvers use the two endpoints only. Solver options: ``--eta``,
``--rtol``, ``--atol`` or any ``--option KEY=VALUE``.
"""

from __future__ import annotations

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_model_source, add_result, load_path_model
from sfbench.commands.names import SOLVERS


def parse_option(text: str) -> tuple[str, float | int | str]:
    """``key=value`` with value read as int, then float, then kept as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"solver option must look like key=value, got {text!r}")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, value


def add_parser(sub):
    p = sub.add_parser("sample", help="sample a model with one solver", description=__doc__)
    add_model_source(p)
    p.add_argument("--solver", required=True, help=f"one of {', '.join(SOLVERS)}")
    p.add_argument("--steps", type=positive_int, help="number of solver steps (not for dopri5)")
    p.add_argument("--rtol", type=float, help="relative tolerance (dopri5)")
    p.add_argument("--atol", type=float, help="absolute tolerance (dopri5)")
    p.add_argument("--eta", type=float, help="stochasticity of ddim (0 = deterministic)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other solver option (repeatable)",
    )
    p.add_argument("--grid", default="uniform",
                   help="time grid of a fixed-step solver: uniform, edm, logsnr")
    p.add_argument("--grid-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the grid, e.g. rho=5 for edm (repeatable)")
    p.add_argument("--n-samples", type=positive_int, default=2000)
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed (per sample)")
    p.add_argument("--trajectory", action="store_true", help="also store the trajectory")
    p.add_argument("--out", required=True, help=".npz with array `samples` (and `trajectory`)")
    add_result(p)
    return p


def solver_options(args) -> dict:
    options = dict(parse_option(o) for o in args.option)
    options.update(
        {k: getattr(args, k) for k in ("rtol", "atol", "eta") if getattr(args, k) is not None}
    )
    return options


def run(args) -> dict:
    import numpy as np

    from sfbench.io import save_npz
    from sfbench.sampling import generate
    from sfbench.solvers.registry import get_solver

    get_solver(args.solver)  # unknown names fail before the model is loaded
    model, model_info = load_path_model(args)
    res = generate(
        model,
        args.solver,
        args.steps,
        args.n_samples,
        args.seed,
        grid=args.grid,
        grid_options=dict(parse_option(o) for o in args.grid_option),
        record_trajectory=args.trajectory,
        **solver_options(args),
    )
    samples = np.asarray(res.samples, dtype=np.float32)
    arrays = {"samples": samples, "nfe": np.asarray(res.nfe)}
    if args.trajectory and res.trajectory is not None:
        arrays["trajectory"] = np.asarray(res.trajectory, dtype=np.float32)
    save_npz(args.out, **arrays)
    finite = np.isfinite(samples).all(axis=1)
    return {
        "command": "sample",
        "settings": {
            **res.settings,
            "model": model_info,
            "method": model_info.get("method"),
            "dataset": model_info.get("dataset"),
            "seed": args.seed,
        },
        "result": {
            "nfe": res.nfe,
            "wall_seconds": res.wall_seconds,
            "n_finite": int(finite.sum()),
            "n_samples": int(samples.shape[0]),
        },
        "outputs": [args.out],
    }
