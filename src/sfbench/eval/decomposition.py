r"""Where a sampler's error comes from, on Gaussian-mixture data where the exact model is known.

For a trained model f and a solver S at K steps, sample i starts from the
same noise z_i in every solve (:func:`sfbench.sampling.generate`). With
:math:`\Phi_f` the exact flow of f (a tight adaptive solve) and the oracle
o (the exact velocity and score of the same path, :mod:`sfbench.eval.oracle`):

- **total** :math:`W_2(S_K[f](z), \text{test})`: what the sweep reports;
- **discretization** :math:`W_2(S_K[o](z), \text{test})`: the same solver on
  the exact model, so the only error left is the solver's (plus the floor).
  For deterministic solvers also the paired
  :math:`\text{RMSE}(S_K[o](z), \Phi_o(z)) = (\frac1n \sum_i |S_K[o](z_i) - \Phi_o(z_i)|^2)^{1/2}`
  against the oracle's exact flow from the same noise. Stochastic solvers
  get no paired number: their exact counterpart is the reverse SDE, whose
  solution from z_i depends on the Brownian path, and only its *law* is the
  data distribution; the W2 to the test data next to the floor is the
  measure that means the same for both kinds;
- **exact flow** :math:`W_2(\Phi_f(z), \text{test})`: the trained model's own
  error with no discretization (learning error plus the floor);
- **floor**: W2 between the test split and independent draws of the data of
  the same size, the value a perfect sampler still shows.

Also per deterministic cell, the trained model's own discretization
:math:`\text{RMSE}(S_K[f](z), \Phi_f(z))`. Paired RMSE is the cost of one
coupling, so it bounds the W2 between the two sample sets, and by the
triangle inequality of W2 between empirical measures
:math:`\text{total} \le \text{exact flow} + \text{RMSE}(S_K[f], \Phi_f)`.

The oracle is the marginal flow of the *independent* coupling; a model
trained on another coupling (minibatch OT, reflow or distillation pairs)
learns another flow, whose exact velocity has no closed form, so it gets no
oracle terms (``oracle_note`` says why).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sfbench.eval.distances import wasserstein2
from sfbench.model import PathModel
from sfbench.sampling import generate
from sfbench.solvers import get_solver

#: rtol = atol of the adaptive solve that stands for the exact flow.
EXACT_TOLERANCE = 1e-5
EXACT_SOLVER = "dopri5"


@dataclass
class Decomposition:
    """The error terms of one model (see the module doc).

    Attributes:
        cells: one dict per (solver, steps): total_w2, discretization_w2,
            discretization_rmse, model_discretization_rmse, nfe, ...
        exact_flow_w2: W2 of the model's exact flow to the test data.
        oracle_exact_w2: W2 of the oracle's exact flow (should sit at the floor).
        settings: every setting that shaped the numbers.
        exact_flow_nfe, oracle_exact_nfe: evaluations of the exact solves.
        exact_seconds: time of the two exact solves and their W2.
    """

    cells: list[dict]
    exact_flow_w2: float
    oracle_exact_w2: float | None
    exact_flow_nfe: int
    oracle_exact_nfe: int | None
    exact_seconds: float = 0.0
    settings: dict = field(default_factory=dict)


def paired_rmse(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    r"""(1/n sum_i |a_i - b_i|^2)^{1/2} of two [n, d] sets with row i paired to row i."""
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired sets differ in shape: {list(a.shape)} and {list(b.shape)}")
    return float((a - b).pow(2).sum(1).mean().sqrt())


def _w2(samples: torch.Tensor, test: np.ndarray) -> float:
    x = samples.numpy()
    return wasserstein2(x, test) if np.isfinite(x).all() else math.nan


def _exact(model: PathModel, n: int, seed: int, tol: float, dtype, one_step: bool):
    if one_step:  # the model's sample map is the one Euler step; nothing finer exists
        return generate(model, "euler", 1, n, seed, dtype=dtype)
    return generate(model, EXACT_SOLVER, None, n, seed, rtol=tol, atol=tol, dtype=dtype)


def decompose(
    model: PathModel,
    oracle: PathModel | None,
    test: np.ndarray,
    cells: Sequence[tuple[str, int]],
    n_samples: int,
    seed: int,
    *,
    exact_tolerance: float = EXACT_TOLERANCE,
    model_dtype: torch.dtype | None = None,
    oracle_dtype: torch.dtype = torch.float64,
) -> Decomposition:
    """Total, discretization and exact-flow error of ``model`` at every (solver, steps) cell.

    Args:
        model: the trained model (or the oracle itself, as a check).
        oracle: the exact model of the same path and data, or None when the
            model's coupling has no closed-form oracle (no oracle terms).
        test: [m, d] test split the W2 are measured against.
        cells: (fixed-step solver, steps) pairs; adaptive solvers are refused.
        n_samples: samples per solve, all from the same noise (seed, i).
        exact_tolerance: rtol = atol of the dopri5 solve taken as exact.

    Raises:
        ValueError: for an adaptive solver in ``cells`` or an empty cell list.
    """
    if not cells:
        raise ValueError("no (solver, steps) cell to decompose")
    for solver, _steps in cells:
        if get_solver(solver).adaptive:
            raise ValueError(f"{solver!r} is adaptive; the cells are fixed-step solvers")
    one_step = model.one_step
    test = np.asarray(test, dtype=np.float64)

    tic = time.perf_counter()
    exact = _exact(model, n_samples, seed, exact_tolerance, model_dtype, one_step)
    exact_w2 = _w2(exact.samples, test)
    oracle_exact = oracle_exact_w2 = None
    if oracle is not None:
        oracle_exact = _exact(oracle, n_samples, seed, exact_tolerance, oracle_dtype, False)
        oracle_exact_w2 = _w2(oracle_exact.samples, test)
    exact_seconds = time.perf_counter() - tic

    rows = []
    for solver, steps in cells:
        tic = time.perf_counter()
        res = generate(model, solver, steps, n_samples, seed, dtype=model_dtype)
        deterministic = res.settings["solver_kind"] == "ode"
        row = {
            "solver": solver,
            "solver_kind": res.settings["solver_kind"],
            "steps": steps,
            "options": res.settings["options"],
            "nfe": int(res.nfe),
            "total_w2": _w2(res.samples, test),
            "model_discretization_rmse": (
                paired_rmse(res.samples, exact.samples) if deterministic else None
            ),
            "discretization_w2": None,
            "discretization_rmse": None,
        }
        if oracle is not None:
            ref = generate(oracle, solver, steps, n_samples, seed, dtype=oracle_dtype)
            row["discretization_w2"] = _w2(ref.samples, test)
            if deterministic:
                row["discretization_rmse"] = paired_rmse(ref.samples, oracle_exact.samples)
        row["seconds"] = time.perf_counter() - tic
        rows.append(row)

    settings = {
        "n_samples": n_samples,
        "sampling_seed": seed,
        "n_test": int(test.shape[0]),
        "exact_solver": "euler (one-step model)" if one_step else EXACT_SOLVER,
        "exact_tolerance": None if one_step else exact_tolerance,
        "oracle": oracle is not None,
        "oracle_dtype": str(oracle_dtype).removeprefix("torch."),
        "model_dtype": exact.settings["dtype"],
        "grid": "uniform",
        "schedule": model.schedule.describe(),
    }
    return Decomposition(
        cells=rows,
        exact_flow_w2=exact_w2,
        oracle_exact_w2=oracle_exact_w2,
        exact_flow_nfe=int(exact.nfe),
        oracle_exact_nfe=None if oracle_exact is None else int(oracle_exact.nfe),
        exact_seconds=exact_seconds,
        settings=settings,
    )


def noise_floor(draws: Sequence[np.ndarray], test: np.ndarray) -> dict:
    """W2 of independent draws of the data to the test split: mean, std and each value."""
    values = [wasserstein2(np.asarray(d, dtype=np.float64), test) for d in draws]
    if not values:
        raise ValueError("the noise floor needs at least one independent draw")
    return {
        "floor_w2": float(np.mean(values)),
        "floor_w2_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "floor_w2_draws": values,
    }
