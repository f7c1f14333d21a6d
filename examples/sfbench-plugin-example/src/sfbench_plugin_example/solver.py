r"""Ralston's second-order Runge-Kutta method (Ralston 1962).

Of the explicit two-stage second-order methods, the one with the smallest
bound on the local truncation error:

.. math::
    k_1 = v(x, t), \quad k_2 = v(x + \tfrac{2}{3} h k_1, t + \tfrac{2}{3} h), \quad
    x \leftarrow x + h (\tfrac{1}{4} k_1 + \tfrac{3}{4} k_2).

Two model evaluations per step, never at the step's end (like the midpoint rule).
"""

from sfbench.solvers.grids import walk_grid
from sfbench.solvers.registry import SolverSpec


def ralston(model, x, grid, noise, *, callback=None):
    """The common solver signature (docs/ARCHITECTURE.md); deterministic, so ``noise``
    is unused."""

    def step(i, t, s, x):
        h = s - t
        k1 = model.predict(x, t).velocity
        k2 = model.predict(x + (2.0 / 3.0) * h * k1, t + (2.0 / 3.0) * h).velocity
        return x + h * (0.25 * k1 + 0.75 * k2)

    return walk_grid(grid, x, step, callback)


RALSTON = SolverSpec(
    "ralston", ralston, "ode",
    description="Ralston's RK2 (2nd order, minimal error bound, 2 NFE/step)",
    order=2, nfe_per_step="2",
)
