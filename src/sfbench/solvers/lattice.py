"""Whole-step lattices of discrete-time schedules, for the ``uniform`` grid.

A discrete-time model (DDPM) is trained at whole steps k = 1..T only; between
them its schedule is a spline the network never saw. So on such a schedule
(``schedule.is_discrete``) the uniform grid puts every point on a whole step,
as diffusers' schedulers do (its timestep j is step k = j + 1 here):

- ``lattice="trailing"`` (default; diffusers' ``timestep_spacing="trailing"``,
  which Lin et al. 2024, "Common diffusion noise schedules and sample steps are
  flawed", recommend): k_i = round(T - i T / N) for i = 0..N-1, then k = 1;
- ``lattice="linspace"``: k_i = round(T + i (1 - T) / N), i = 0..N, i.e. N + 1
  whole steps from T to 1 evenly spaced;
- ``lattice="none"``: uniform in t between t_start (k = T) and t_end (k = 1),
  the interior points off the lattice (the grid of continuous schedules).

Rounding is half to even, as numpy's and torch's. A step count for which two
points would round to the same step raises ValueError naming the largest that
works (trailing: round(T / N) >= 2, about N <= 2T / 3; linspace: N <= T - 1).
Continuous schedules ignore the option: their uniform grid is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: The spacings of the uniform grid's ``lattice`` option on discrete-time schedules.
LATTICES = ("trailing", "linspace", "none")


def lattice_steps(steps: int, num_steps: int, lattice: str) -> Tensor:
    """The ``steps + 1`` whole steps, from T = ``num_steps`` down to 1, of a lattice grid.

    Raises:
        ValueError: if two of them coincide, naming the largest step count that works.
    """
    k = _lattice(steps, num_steps, lattice)
    if not bool(torch.all(k.diff() < 0)):
        fits = [n for n in range(min(steps, num_steps), 0, -1)
                if bool(torch.all(_lattice(n, num_steps, lattice).diff() < 0))]
        limit = f"at most {fits[0]}" if fits else "none"
        raise ValueError(
            f"uniform grid with lattice {lattice!r} on a schedule of {num_steps} steps: "
            f"{steps} steps would repeat a step ({limit} fit); use fewer steps or "
            f"lattice 'none'"
        )
    return k


def _lattice(n: int, num_steps: int, lattice: str) -> Tensor:
    if lattice == "trailing":
        # diffusers' np.round(np.arange(T, 0, -T / N)), then the last trained step k = 1
        k = torch.round(num_steps - torch.arange(n, dtype=torch.float64) * (num_steps / n))
        return torch.cat([k, torch.ones(1, dtype=torch.float64)])
    # T - i (T - 1) / N, i (T - 1) an exact integer: a tie (x.5) stays exact and rounds to even
    i = torch.arange(n + 1, dtype=torch.float64)
    return torch.round(num_steps - i * (num_steps - 1) / n)
