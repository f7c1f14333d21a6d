"""Drawing samples from a path model with a named solver: :func:`generate`.

This is the one entry point the CLI, the pipeline and the metrics use. It
owns what a solver should not: batching, the starting noise, the time grid,
NFE counting, timing and the record of every setting that shaped the samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sfbench.model import PathModel, model_label, sample_dim
from sfbench.solvers import CountingModel, NoiseSource, get_grid, get_solver


@dataclass
class SampleResult:
    """The output of :func:`generate`.

    Attributes:
        samples: [n_samples, dim] CPU torch tensor in the working dtype
            (float32 unless ``dtype=torch.float64`` was asked for).
        nfe: model evaluations of one solve of one batch. Fixed-grid solvers
            spend the same on every batch; for ``dopri5`` this is the maximum
            over batches.
        wall_seconds: time spent in the solver calls (model evaluations and
            step noise), summed over batches; drawing the starting noise and
            copying trajectories are not included.
        settings: every setting that shaped the samples (JSON-serialisable).
        trajectory: [len(grid), n_samples, dim] states at every grid point
            if asked for (two points, start and end, for ``dopri5``), else None.
        nfe_per_batch: the counted NFE of each batch solve.
        grid: the float64 time grid the solver was given (the two endpoints
            for adaptive solvers), e.g. the times of ``trajectory``.
        initial: [n_samples, dim] CPU tensor, the starting noise of each
            sample (what sample i was carried from: reflow pairs).
    """

    samples: Tensor
    nfe: int
    wall_seconds: float
    settings: dict[str, Any]
    trajectory: Tensor | None = None
    nfe_per_batch: list[int] = field(default_factory=list)
    grid: Tensor | None = None
    initial: Tensor | None = None


@dataclass(frozen=True)
class SampleBatch:
    """One batch solve of :func:`generate`, as its ``callback`` sees it.

    ``initial`` and ``final`` are the batch's states at t_start and t_end on
    the sampling device in the working dtype (samples ``start`` to ``stop - 1``);
    ``nfe`` is the counted model evaluations of this solve; ``grid`` the
    float64 times the solver was given.
    """

    start: int
    stop: int
    initial: Tensor
    final: Tensor
    nfe: int
    grid: Tensor


#: ``step_callback(i, t, x)``: the state x of the current batch at grid point i (time t).
StepCallback = Callable[[int, float, Tensor], None]


def check_sampler(model: PathModel, solver: str, steps: int | None, options: Mapping) -> None:
    """Refuse the samplers a model's declared capabilities do not allow.

    - A one-step model (a distilled map) is trained at t_start only, so any
      evaluation at a later time, which every sampler but one Euler step
      makes, is meaningless (``one_step``).
    - A model trained on coupled pairs (reflow, distill) learns a velocity
      whose (x0, eps) do not give the score (``has_score`` False): the conversion
      assumes noise independent of the data. Stochastic samplers (the reverse SDE, DDIM
      with eta > 0, EDM churn) then sample another distribution (measured
      on 8gaussians: W2 0.8 against 0.33 for ODE solvers on the same 2-RF model).
    """
    if model.one_step and (solver != "euler" or steps != 1):
        raise ValueError(
            f"{model_label(model)} is a one-step model (trained at t = t_start only): it is "
            f"sampled by solver 'euler' with steps=1, not {solver!r} with steps={steps}"
        )
    stochastic = (
        get_solver(solver).kind == "sde"
        or (options.get("eta") or 0) > 0
        or (options.get("s_churn") or 0) > 0
    )
    if stochastic and not model.has_score:
        raise ValueError(
            f"{model_label(model)} has no score (a model trained on coupled (noise, data) "
            "pairs: its velocity does not give it), and a stochastic sampler needs one; "
            f"use an ODE solver, not {solver!r}"
        )


def _parameter(model: PathModel) -> torch.Tensor | None:
    if isinstance(model, nn.Module):
        return next(model.parameters(), None)
    return None


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def generate(
    model: PathModel,
    solver: str,
    steps: int | None,
    n_samples: int,
    seed: int,
    *,
    grid: str = "uniform",
    grid_options: Mapping[str, Any] | None = None,
    dim: int | None = None,
    batch_size: int | None = None,
    record_trajectory: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    callback: Callable[[SampleBatch], None] | None = None,
    step_callback: StepCallback | None = None,
    **options: Any,
) -> SampleResult:
    """Sample ``n_samples`` points by integrating ``solver`` from t_start to t_end.

    Sample i starts from ``prior_std * z_i`` with z_i drawn from (seed, i)
    only (:class:`~sfbench.solvers.NoiseSource`), so it starts from the same
    point under every solver, step count and batch size; the step noise of
    stochastic solvers is the increments of sample i's own Brownian path,
    also a function of (seed, i) only. So sample i does not depend on
    ``batch_size`` for any solver, and changing ``steps`` or ``grid`` refines
    the same Brownian path.

    Args:
        model: any path model (a network or the oracle).
        solver: a name in :data:`sfbench.solvers.SOLVERS`.
        steps: number of grid steps (>= 1); ignored, and recorded as None,
            for adaptive solvers (``dopri5``).
        n_samples: number of samples (>= 1).
        seed: non-negative integer seed of all noise.
        grid: name of the time grid in :data:`sfbench.solvers.GRIDS`
            ("uniform", "edm", "logsnr"); adaptive solvers use only the
            endpoints and record "endpoints".
        grid_options: options of the grid (e.g. ``{"rho": 5}`` for "edm");
            unknown ones raise ValueError.
        dim: flat data dimension; default ``prod(model.sample_shape)``.
        batch_size: samples per solve; all at once if None.
        record_trajectory: keep the state at every grid point.
        dtype: working dtype; default the model's parameter dtype, else float32.
        device: default the model's parameter device, else CPU.
        callback: called with a :class:`SampleBatch` after each batch solve,
            so a measurement along the samples (straightness) reuses this
            loop, its noise and its grid instead of restating them.
        step_callback: called as ``(i, t, x)`` at every grid point of each
            batch solve (the solver's own callback), before ``callback`` of
            that batch; evaluations it makes are not counted in ``nfe``.
        **options: solver options (e.g. ``eta`` for ddim, ``rtol``/``atol``
            for dopri5); unknown ones raise ValueError.

    Returns:
        A :class:`SampleResult`.
    """
    spec = get_solver(solver)
    resolved = spec.resolve_options(options)
    check_sampler(model, solver, steps, resolved)
    grid_spec = get_grid(grid)
    grid_resolved = grid_spec.resolve_options(grid_options or {})
    schedule = model.schedule
    if spec.adaptive:
        steps = None
        grid_name, grid_resolved = "endpoints", {}
        times = torch.tensor([schedule.t_start, schedule.t_end], dtype=torch.float64)
    else:
        if steps is None:
            raise ValueError(f"steps is required for solver {solver!r}")
        grid_name = grid
        times = grid_spec(steps, schedule, **grid_resolved)
    n_samples = _positive_int("n_samples", n_samples)
    batch_size = n_samples if batch_size is None else _positive_int("batch_size", batch_size)
    batch_size = min(batch_size, n_samples)
    dim = sample_dim(model) if dim is None else _positive_int("dim", dim)
    param = _parameter(model)
    dtype = dtype or (param.dtype if param is not None else torch.float32)
    device = torch.device(device or (param.device if param is not None else "cpu"))
    prior_std = schedule.prior_std()
    noise = NoiseSource(seed, n_samples)

    settings = {
        "solver": solver,
        "solver_kind": spec.kind,
        "steps": steps,
        "options": resolved,
        "seed": seed,
        "n_samples": n_samples,
        "batch_size": batch_size,
        "dim": dim,
        "dtype": str(dtype).removeprefix("torch."),
        "grid": grid_name,
        "grid_options": grid_resolved,
        "t_start": schedule.t_start,
        "t_end": schedule.t_end,
        "prior_std": prior_std,
        "schedule": schedule.describe(),
        "noise": noise.describe(),
    }

    samples, starts_x, paths, nfes, seconds = [], [], [], [], 0.0
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            starts = range(0, n_samples, batch_size)
            for start in tqdm(starts, desc=f"sampling ({solver})", disable=None, leave=False):
                stop = min(start + batch_size, n_samples)
                batch_noise = noise.batch(start, stop)
                x = batch_noise.initial((dim,), prior_std, dtype, device)
                starts_x.append(x.to("cpu", copy=True))
                states: list[Tensor] = []

                def record(i: int, t: float, x: Tensor, states: list[Tensor] = states) -> None:
                    if record_trajectory:
                        states.append(x.to("cpu", copy=True))
                    if step_callback is not None:
                        step_callback(i, t, x)

                counting = CountingModel(model)
                tic = time.perf_counter()
                initial = x
                x = spec.fn(
                    counting, x, times, batch_noise,
                    callback=record if record_trajectory or step_callback else None, **resolved,
                )
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds += time.perf_counter() - tic
                nfes.append(counting.nfe)
                if callback is not None:
                    callback(SampleBatch(start, stop, initial, x, counting.nfe, times))
                samples.append(x.cpu())
                if record_trajectory:
                    paths.append(torch.stack(states))
    finally:
        if was_training:
            model.train()

    return SampleResult(
        samples=torch.cat(samples),
        nfe=max(nfes),
        wall_seconds=seconds,
        settings=settings,
        trajectory=torch.cat(paths, dim=1) if record_trajectory else None,
        nfe_per_batch=nfes,
        grid=times,
        initial=torch.cat(starts_x),
    )
