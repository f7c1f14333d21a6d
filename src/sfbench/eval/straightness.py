r"""How straight a model's probability-flow trajectories are.

Along an ODE trajectory x_t of the model's velocity v, from x_start at
t_start (noise) to x_end at t_end (data), with L = t_end - t_start and the
displacement d = x_end - x_start, time rescaled to tau = (t - t_start) / L in
[0, 1] (so dx/dtau = L v):

- **straightness** (Liu, Gong & Liu 2023, "Flow straight and fast", eq. 3)

  .. math:: S = E \int_0^1 \left\lVert d - \frac{dx}{d\tau} \right\rVert^2 d\tau
             = E\, \frac{1}{L} \int_{t_{start}}^{t_{end}} \lVert L\, v(x_t, t) - d \rVert^2 dt,

  zero exactly when every trajectory is a straight line run at constant
  speed, x_tau = x_start + tau d (then one Euler step is exact);
- **path energy ratio** (``path_energy_ratio``; sfbench's own measure)

  .. math:: R = \frac{PE}{E \lVert d \rVert^2} \ge 1, \qquad
            PE = E\, L \int \lVert v(x_t, t) \rVert^2 dt,

  the kinetic energy of the flow relative to that of the straight paths with
  the same endpoints (>= 1 by Jensen; 1 when straight). Since
  :math:`\int v\, dt = d`, :math:`R = 1 + S / E\lVert d \rVert^2`.
  Before issue 15 sfbench recorded this under the name
  ``normalized_path_energy``, which is not Tong et al.'s quantity;
- **normalized path energy** (``normalized_path_energy``; Tong et al. 2024,
  "Improving and generalizing flow-based generative models with minibatch
  optimal transport", TMLR; the "normalized path energy" column of its 2-D
  results, OT-CFM 0.018 vs I-CFM 0.222 on 8 Gaussians of radius 5)

  .. math:: NPE = \frac{|PE - W_2^2|}{W_2^2},

  the flow's kinetic energy in excess of the least any flow between the two
  ends can spend (Benamou & Brenier 2000: min PE = W_2^2). W_2^2 here is the
  exact OT cost (``ot.emd2``, squared Euclidean, uniform weights) between the
  trajectories' own noise starts and data ends, so the two terms are of the
  same transport: the flow's coupling (start_i, end_i) is one admissible plan,
  hence PE >= E|d|^2 >= W_2^2 up to quadrature error and NPE = 0 exactly for
  the OT map run at constant speed. Tong et al. compare with W_2 between noise
  and data draws; on a well-trained model the ends are such a draw, and the
  ends' own W_2 keeps a model's sampling error out of the figure. NPE is
  biased by the empirical W_2^2 of n points (larger n, smaller bias; 500-1000
  points are within a few per cent of each other on 2-D data).

Both are integrated along a fixed-grid ODE solve (default RK4, 100 uniform
steps) run by :func:`sfbench.sampling.generate` itself (its batch loop, its
per-sample starting noise; the sums ride on its callbacks), with the
trapezoidal rule on the solver's grid; v is evaluated once more at each grid
point (``nfe_metric``). The sums are streamed (per sample
:math:`\sum_j w_j \lVert v_j \rVert^2` and :math:`\sum_j w_j v_j`), so memory
does not grow with the number of steps: with these,
:math:`S_i = L \sum_j w_j \lVert v_j \rVert^2 - 2 d \cdot \sum_j w_j v_j + \lVert d \rVert^2`,
which is algebraically the trapezoid rule applied to the squared deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sfbench.eval.distances import wasserstein2
from sfbench.model import PathModel, model_label
from sfbench.sampling import SampleBatch, generate
from sfbench.solvers import get_grid, get_solver


@dataclass(frozen=True)
class StraightnessResult:
    """Straightness and path energy of a model's ODE trajectories.

    Attributes:
        straightness: E S_i (module doc).
        path_energy_ratio: PE / E|d|^2 with PE = E[L int |v|^2 dt].
        normalized_path_energy: Tong et al.'s |PE - W2^2| / W2^2.
        path_energy: PE = E[L int |v|^2 dt].
        mean_squared_displacement: E|d|^2 = E|x_end - x_start|^2.
        w2_squared_ends: W2^2 (exact OT) between the starts and the ends.
        per_sample_straightness: [n_samples] float64 tensor of S_i.
        nfe_solver: model evaluations of the ODE solve (summed over batches).
        nfe_metric: extra evaluations at the grid points (summed over batches).
        settings: every setting that shaped the numbers (JSON-serialisable).
    """

    straightness: float
    path_energy_ratio: float
    normalized_path_energy: float
    path_energy: float
    mean_squared_displacement: float
    w2_squared_ends: float
    per_sample_straightness: Tensor
    nfe_solver: int
    nfe_metric: int
    settings: dict

    def summary(self) -> dict:
        """The numbers a result file records, with the settings."""
        return {
            "straightness": self.straightness,
            "path_energy_ratio": self.path_energy_ratio,
            "normalized_path_energy": self.normalized_path_energy,
            "path_energy": self.path_energy,
            "mean_squared_displacement": self.mean_squared_displacement,
            "w2_squared_ends": self.w2_squared_ends,
            "nfe_solver": self.nfe_solver,
            "nfe_metric": self.nfe_metric,
            **self.settings,
        }


def trapezoid_weights(grid: Tensor) -> Tensor:
    """Weights w_j with sum_j w_j f(t_j) the trapezoidal rule on ``grid`` (float64)."""
    h = grid.diff().to(torch.float64)
    w = torch.zeros_like(grid, dtype=torch.float64)
    w[:-1] += 0.5 * h
    w[1:] += 0.5 * h
    return w


def normalized_path_energy(path_energy: float, w2_squared: float) -> float:
    """Tong et al. (2024)'s |PE - W2^2| / W2^2; W2^2 must be positive."""
    if not w2_squared > 0:
        raise ValueError(f"normalized path energy needs W2^2 > 0, got {w2_squared}")
    return abs(path_energy - w2_squared) / w2_squared


def straightness(
    model: PathModel,
    n_samples: int,
    seed: int,
    *,
    solver: str = "rk4",
    steps: int = 100,
    grid: str = "uniform",
    dim: int | None = None,
    batch_size: int | None = None,
    dtype: torch.dtype | None = None,
) -> StraightnessResult:
    """Straightness, path energy ratio and normalized path energy of ``model``'s flow.

    See the module doc for the three quantities.

    Args:
        model: any path model (a network or the oracle).
        n_samples: number of trajectories (>= 1).
        seed: seed of the starting noise (sample i starts where it does in
            :func:`~sfbench.sampling.generate` with the same seed).
        solver: a deterministic fixed-grid solver (kind "ode", not adaptive),
            run with its default options.
        steps: number of grid steps; the quadrature uses the same grid.
        grid: name of the time grid.
        dim: data dimension; inferred from the model if None.
        batch_size: trajectories per solve; all at once if None.
        dtype: working dtype; default the model's parameter dtype, else float32.

    Raises:
        ValueError: for a stochastic or adaptive solver, bad sizes, or a
            one-step model (its network is valid at t_start only; its sample
            path, one Euler step, is straight by construction: S = 0, E = 1).
    """
    if model.one_step:
        raise ValueError(
            f"{model_label(model)} is a one-step model: its sample path is one straight Euler "
            "step (straightness 0, path energy 1 by construction) and its velocity is not "
            "defined after t_start, so there is no flow to measure"
        )
    spec = get_solver(solver)
    if spec.kind != "ode" or spec.adaptive:
        raise ValueError(
            f"straightness needs a deterministic fixed-grid solver, got {solver!r} "
            f"(kind {spec.kind!r}, adaptive {spec.adaptive})"
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    schedule = model.schedule
    times = get_grid(grid)(steps, schedule)
    weights = trapezoid_weights(times).tolist()
    length = float(times[-1] - times[0])
    per_sample, energy, displacement, starts, ends = [], [], [], [], []
    sums = {"v2": 0.0, "v": 0.0}  # the streamed sums of the batch being solved

    def accumulate(j: int, t: float, x: Tensor) -> None:
        v = model.predict(x, t).velocity.to(torch.float64).flatten(1)
        sums["v2"] = sums["v2"] + weights[j] * v.pow(2).sum(1)
        sums["v"] = sums["v"] + weights[j] * v

    def finish(batch: SampleBatch) -> None:
        d = (batch.final - batch.initial).to(torch.float64).flatten(1)
        d2 = d.pow(2).sum(1)
        s_i = length * sums["v2"] - 2.0 * (d * sums["v"]).sum(1) + d2
        # A sum of squares: a negative value is roundoff of a straight path.
        per_sample.append(s_i.clamp_min(0.0).cpu())
        energy.append((length * sums["v2"]).cpu())
        displacement.append(d2.cpu())
        starts.append(batch.initial.to(torch.float64).flatten(1).cpu())
        ends.append(batch.final.to(torch.float64).flatten(1).cpu())
        sums.update(v2=0.0, v=0.0)

    # generate's batch loop: the same starting noise, grid and solve as sampling
    res = generate(model, solver, steps, n_samples, seed, grid=grid, dim=dim,
                   batch_size=batch_size, dtype=dtype, callback=finish,
                   step_callback=accumulate)
    nfe_solver = sum(res.nfe_per_batch)
    nfe_metric = len(times) * len(res.nfe_per_batch)
    dim, dtype = res.settings["dim"], res.settings["dtype"]

    s_all, e_all, d_all = torch.cat(per_sample), torch.cat(energy), torch.cat(displacement)
    # The least energy any flow from these starts to these ends can spend (exact OT).
    w2_sq = wasserstein2(torch.cat(starts), torch.cat(ends)) ** 2
    settings = {
        "straightness_solver": solver,
        "straightness_steps": steps,
        "straightness_grid": grid,
        "quadrature": "trapezoid on the solver grid",
        "normalized_path_energy_w2": "exact OT (ot.emd2), trajectory starts -> ends",
        "n_samples": n_samples,
        "seed": seed,
        "dim": dim,
        "dtype": dtype,
        "t_start": schedule.t_start,
        "t_end": schedule.t_end,
        "schedule": schedule.describe(),
    }
    return StraightnessResult(
        straightness=float(s_all.mean()),
        path_energy_ratio=float(e_all.mean() / d_all.mean()),
        normalized_path_energy=normalized_path_energy(float(e_all.mean()), w2_sq),
        path_energy=float(e_all.mean()),
        mean_squared_displacement=float(d_all.mean()),
        w2_squared_ends=w2_sq,
        per_sample_straightness=s_all,
        nfe_solver=nfe_solver,
        nfe_metric=nfe_metric,
        settings=settings,
    )


def flow_record(model: PathModel, n_samples: int, seed: int, steps: int = 100) -> dict:
    """What a result file records of ``model``'s flow: :func:`straightness` with RK4.

    A one-step model (distill) gets S = 0 and path energy ratio 1 marked
    ``by_construction``: its sample path is one straight Euler step, and it has
    no flow to integrate. Its normalized path energy is left out: it depends on
    whether the one step happens to be the OT map, which nothing here measures.
    """
    if model.one_step:
        return {
            "straightness": 0.0, "path_energy_ratio": 1.0, "by_construction": True,
            "note": "one-step model: its sample path is one straight Euler step",
        }
    res = straightness(model, n_samples, seed, solver="rk4", steps=steps)
    return {**res.summary(), "by_construction": False}
