"""A sweep's settings as command-line flags, for running ``sfbench sweep`` by hand.

The workflow gives a sweep its settings as one file (``--config SWEEP.yaml``,
:class:`~sfbench.sweep.config.SweepConfig`). By hand the same settings can be
flags; the rule is one source per sweep: with ``--config`` none of these flags
may be given (a flag silently overriding or being overridden by a file is how
a sweep ends up measuring something other than what its config says).
:func:`config_from_flags` turns the flags into the same :class:`SweepConfig`.
Standard library only: the command's parser is built from this module.
"""

from __future__ import annotations

import argparse

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.errors import SfbenchError


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


def _ints(text: str, names: str) -> list[int]:
    parts = text.split(":")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != names.count(":") + 1 or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected {names} (positive), got {text!r}")
    return values


def trajectory_spec(text: str) -> dict:
    """``heun:32:200`` -> {"solver": "heun", "steps": 32, "n_points": 200}."""
    solver, _, rest = text.partition(":")
    if not solver:
        raise argparse.ArgumentTypeError(f"expected SOLVER:STEPS:N_POINTS, got {text!r}")
    steps, n_points = _ints(rest, "STEPS:N_POINTS")
    return {"solver": solver, "steps": steps, "n_points": n_points}


def straightness_spec(text: str) -> dict:
    """``500:100`` -> {"n_points": 500, "steps": 100}."""
    n_points, steps = _ints(text, "N_POINTS:STEPS")
    return {"n_points": n_points, "steps": steps}


#: flag destination -> SweepConfig key (or (section, key)).
FLAGS = {
    "solvers": "solvers", "steps": "steps", "grids": "grids", "adaptive": "adaptive",
    "n_samples": "n_samples", "seed": "seed", "held_out_seeds": "held_out_seeds",
    "native": "native", "device": "device",
    "trajectory": "trajectory", "straightness": "straightness",
    "nll_points": ("nll", "n_points"), "nll_rtol": ("nll", "rtol"), "nll_atol": ("nll", "atol"),
    "kid_subsets": ("fid", "kid_subsets"), "kid_subset_size": ("fid", "kid_subset_size"),
    "fid_device": ("fid", "device"),
}


def add_flags(p: argparse.ArgumentParser) -> None:
    """The sweep-setting flags (all default None: "not given")."""
    g = p.add_argument_group("sweep settings as flags (by hand; not with --config)")
    g.add_argument("--solvers", nargs="+",
                   help="fixed-step solvers, each run at every --steps ('none': no fixed-step)")
    g.add_argument("--steps", nargs="+", type=positive_int, help="step counts")
    g.add_argument("--grids", nargs="+", help="time grids of the fixed-step solvers "
                   "(uniform, edm, logsnr; default uniform)")
    g.add_argument("--adaptive", type=adaptive_spec, action="append", metavar="SOLVER:TOL,...",
                   help="an adaptive solver and its tolerances, rtol = atol (repeatable)")
    g.add_argument("--n-samples", type=positive_int, help="samples per cell (default: n_test)")
    g.add_argument("--seed", type=non_negative_int,
                   help="selection noise seed: its samples are stored and choose the best cell "
                   "(default 0)")
    g.add_argument("--held-out-seeds", nargs="+", type=non_negative_int, metavar="SEED",
                   help="noise seeds of the reported figures: every cell is also sampled and "
                   "scored on each (other than --seed; default none)")
    # store_const with default None, not store_true: None means "not given", which the
    # one-source rule (flags or --config) needs to tell apart from an explicit setting.
    g.add_argument("--native", action="store_const", const=True,
                   help="also sample each fixed-step solver on its native grid and options")
    g.add_argument("--trajectory", type=trajectory_spec, metavar="SOLVER:STEPS:N_POINTS",
                   help="also store the trajectories of the first N_POINTS samples of one cell")
    g.add_argument("--straightness", type=straightness_spec, metavar="N_POINTS:STEPS",
                   help="also measure the straightness, path energy ratio and normalized path "
                   "energy (Tong et al.) of the model's flow on N_POINTS RK4 trajectories of "
                   "STEPS steps (the sweep's seed)")
    g.add_argument("--device", choices=("cpu", "cuda"), help="sampling device (default cpu)")
    g.add_argument("--nll-points", type=positive_int, help="test points of the NLL (default all)")
    g.add_argument("--nll-rtol", type=float, help="dopri5 rtol of the NLL ODE (default 1e-5)")
    g.add_argument("--nll-atol", type=float, help="dopri5 atol of the NLL ODE (default 1e-5)")
    g.add_argument("--kid-subsets", type=positive_int, help="KID subsets (default 100)")
    g.add_argument("--kid-subset-size", type=positive_int, help="KID subset size (default 1000)")
    g.add_argument("--fid-device", choices=("cpu", "cuda"),
                   help="device of the feature extractor (default cpu)")


def config_from_flags(args, nll: bool) -> dict:
    """The SweepConfig mapping the flags give; ``nll``: whether an NLL record is asked for
    (its section then exists, at its defaults where no flag is given)."""
    out: dict = {"nll": {}} if nll else {}
    for dest, key in FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest == "solvers" and value == ["none"]:
            value = []
        if dest == "adaptive":
            value = dict(value)
        if isinstance(key, tuple):
            out.setdefault(key[0], {})[key[1]] = value
        else:
            out[key] = value
    return out


def given_flags(args) -> list[str]:
    """The sweep-setting flags given on the command line, as typed (``--n-samples``)."""
    return ["--" + dest.replace("_", "-") for dest in FLAGS if getattr(args, dest) is not None]


def check_one_source(args) -> None:
    if args.config and given_flags(args):
        raise SfbenchError(
            f"give the sweep's settings in --config or as flags, not both: {given_flags(args)[0]} "
            f"with --config {args.config}"
        )
