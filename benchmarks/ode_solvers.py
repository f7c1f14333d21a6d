"""Fixed-step ODE solvers: sfbench against torchdiffeq's fixed-grid ``odeint``.

Both sides integrate the same velocity field (a rectified-flow model with the
2-D MLP or the digits U-Net; random weights, since speed does not depend on
training) from the same noise over the same uniform grid, without gradients,
one torch thread:

- ``sfbench``: :mod:`sfbench.solvers.ode` (``euler``, ``midpoint``, ``rk4``);
- ``torchdiffeq``: ``odeint(f, x, grid, method=...)``.

Like is compared with like. torchdiffeq's ``rk4`` is the 3/8-rule variant
(``rk4_alt_step_func``: nodes 1/3, 2/3), not the classical RK4 that sfbench's
``rk4`` is; the classical one exists in torchdiffeq only as
``rk4_step_func``, so it is registered here as ``rk4_classic`` (a subclass of
its ``RK4`` solver) and that is what the ratio uses; the 3/8 rule is timed
as well, for information. Before timing, the final states of both sides
must agree to 1e-5 (relative to the state's scale), so the two do the same
arithmetic. Runs alternate, the figure is the ratio of medians
(torchdiffeq / sfbench: above 1 means sfbench is faster). Beside it, the
number of ATen operators each side dispatches for one solve: a count that
machine load cannot blur, so a timing gap under load can be told from a
real difference in work.

    python -m benchmarks.ode_solvers [--rounds 7] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torchdiffeq import odeint
from torchdiffeq._impl.fixed_grid import RK4
from torchdiffeq._impl.rk_common import rk4_step_func

from benchmarks.reporting import emit, interleaved_medians, ratio
from sfbench.checkpoint import build_model
from sfbench.models import default_network
from sfbench.solvers import ode
from sfbench.solvers.grids import uniform_t_grid


class ClassicalRK4(RK4):
    """torchdiffeq's fixed-grid RK4 with the classical (1/2, 1/2, 1) step, not the 3/8 rule."""

    def _step_func(self, func, t0, dt, t1, y0):
        f0 = func(t0, y0)
        return rk4_step_func(func, t0, dt, t1, y0, f0=f0), f0


# odeint looks methods up in this module-level dict; adding a key changes nothing else.
# (``torchdiffeq._impl.odeint`` the attribute is the function; the module is in sys.modules.)
importlib.import_module("torchdiffeq._impl.odeint").SOLVERS.setdefault("rk4_classic", ClassicalRK4)

#: sfbench solver -> torchdiffeq method doing the same arithmetic.
PAIRS = {"euler": "euler", "midpoint": "midpoint", "rk4": "rk4_classic"}
#: (network, batch, steps): the sweep's 1000 2-D samples; a digits batch.
CASES = {"mlp": (1000, 32), "unet": (64, 16)}


class OperatorCount(TorchDispatchMode):
    """Counts the ATen operators dispatched inside the ``with`` block."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def operator_count(fn: Callable[[], object]) -> int:
    with OperatorCount() as counter:
        fn()
    return counter.count


def make_model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = default_network((1, 8, 8) if kind == "unet" else (2,))
    model = build_model("rectified_flow", {}, spec).eval()
    with torch.no_grad():  # the zero-initialised U-Net output layer would make v constant
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def measure(kind: str, solver: str, rounds: int, batch: int, steps: int) -> dict:
    model = make_model(kind)
    shape = (batch, 1, 8, 8) if kind == "unet" else (batch, 2)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    grid = uniform_t_grid(steps, model.schedule)
    ours_fn = getattr(ode, solver)

    def field(t, y):
        return model.predict(y, t).velocity

    def ours():
        with torch.no_grad():
            return ours_fn(model, x, grid, None)

    def theirs(method=PAIRS[solver]):
        with torch.no_grad():
            return odeint(field, x, grid, method=method)[-1]

    a, b = ours(), theirs()
    scale = float(a.abs().max())
    difference = float((a - b).abs().max())
    if difference > 1e-5 * max(scale, 1.0):
        raise AssertionError(
            f"{kind} {solver}: final states differ by {difference:.2e} (scale {scale:.2f}); "
            "the two sides do not compute the same thing"
        )
    ops = {"sfbench_aten_ops": operator_count(ours), "torchdiffeq_aten_ops": operator_count(theirs)}
    sides = {"sfbench": ours, "torchdiffeq": theirs}
    if solver == "rk4":
        sides["torchdiffeq_rk4_3_8"] = lambda: theirs("rk4")
    med = interleaved_medians(sides, rounds)
    cell = {
        "network": kind, "solver": solver, "torchdiffeq_method": PAIRS[solver],
        "batch": batch, "steps": steps, "max_abs_difference": difference,
        "sfbench_ms_median": 1e3 * med["sfbench"],
        "torchdiffeq_ms_median": 1e3 * med["torchdiffeq"],
        "speedup": med["torchdiffeq"] / med["sfbench"],
        **ops,
    }
    if "torchdiffeq_rk4_3_8" in med:
        cell["torchdiffeq_rk4_3_8_ms_median"] = 1e3 * med["torchdiffeq_rk4_3_8"]
    return cell


def run(rounds: int = 7, quick: bool = False) -> dict:
    cells = []
    for kind, (batch, steps) in CASES.items():
        if quick:
            steps = max(4, steps // 4)
        for solver in PAIRS:
            cells.append(measure(kind, solver, rounds, batch, steps))
    return {
        "benchmark": "ode_solvers",
        "rounds": rounds,
        "cells": cells,
        "ratios": {
            f"ode_speedup_{c['network']}_{c['solver']}": ratio(c["speedup"], "higher", 1.0)
            for c in cells
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return emit(run(args.rounds, args.quick), args.json)


if __name__ == "__main__":
    main()
