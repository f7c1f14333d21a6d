r"""Conformance of sfbench's DDPM-model solvers with the reference schedulers of diffusers.

Every test runs sfbench's solver function and a diffusers scheduler loop on the same model,
the exact Gaussian-mixture oracle of ``gmm_aniso`` on the DDPM schedule (betas 1e-4 .. 0.02,
T = 1000), in float64 from the same starting point and, where the sampler draws, with the
same draws; it compares the states at every matched timestep to 1e-10 and the number of
model evaluations (NFE).

Conventions matched, and why:

- Index mapping. diffusers' timestep j in 0..T-1 indexes ``alphas_cumprod[j]``, which is
  Ho et al.'s alphabar at step k = j + 1; sfbench's DDPMSchedule puts step k at
  t = 1 - k / T. So timestep j is t = 1 - (j + 1) / T, and the last trained step j = 0
  (k = 1) is sfbench's ``t_end``. The "unet" handed to diffusers is the oracle's eps
  prediction at that t.
- Float64 tables. diffusers builds its tables in float32 (``trained_betas`` is cast to
  float32; Euler, Heun and DPM-Solver cast their sigmas to float32 in ``set_timesteps``),
  which alone would cost ~1e-7. The tests give each scheduler float64 betas,
  alphas and alphas_cumprod after construction, and float64 sigmas after ``set_timesteps``
  computed from those same float64 alphas_cumprod at the scheduler's own timesteps (checked
  to equal diffusers' float32 table to float32 precision, so the schedule is diffusers' own).
- Euler and DPM-Solver's ``step`` casts the sample to float32 (an upcast for fp16
  pipelines, a downcast here). The sample handed to those steps is a float64 tensor whose
  ``.to(float32)`` is the identity (:class:`_KeepFloat64`); every formula of the step is
  diffusers' own.
- diffusers' defaults that differ from the DDPM paper setting are switched off:
  ``clip_sample=True`` (DDIM, DDPM) would clamp the x0 prediction to [-1, 1], and the
  mixture's means lie at |x| = 2 .. 2.5; HeunDiscreteScheduler's default betas are
  0.00085 .. 0.012 (Stable Diffusion's), replaced by the DDPM betas.
- Ends. sfbench's DDPM grids end at t_end (k = 1), where the network's training stops.
  The schedulers are set to end there too: DDIM ``set_alpha_to_one=False`` (its last step
  goes to alphas_cumprod[0]); Euler and DPM-Solver ``final_sigmas_type="sigma_min"``
  (sigma of alphas_cumprod[0]). DDPMScheduler has no such option (its last step always goes
  to alphabar = 1 without noise): it is given the timesteps followed by 0, and run for
  every step but that last one, which sfbench does not take. HeunDiscreteScheduler always
  ends at sigma = 0 (t = 1), with an Euler last step; sfbench's edm_heun is run on the grid
  that ends at t = 1 too.
- Correspondence of solvers: diffusers' Euler (k-diffusion, in sigma = sqrt((1 - ab) / ab)
  on x / alpha) is sfbench's ``ddim`` at eta = 0 (Euler in sigma / alpha); Heun is
  ``edm_heun``; DDIM and DDPM are ``ddim`` (eta 0 and 1) and ``ddpm_ancestral``; the
  multistep DPM-Solver (dpmsolver++, order 2, midpoint) is ``dpm_solver_pp_2m``. States of
  the k-diffusion schedulers are compared as alpha * (their state).
"""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from diffusers import (  # noqa: E402
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
)
from diffusers.schedulers import scheduling_ddpm  # noqa: E402

from sfbench.data import get_dataset  # noqa: E402
from sfbench.eval.oracle import GaussianMixtureOracle  # noqa: E402
from sfbench.paths import DDPMSchedule  # noqa: E402
from sfbench.solvers import CountingModel, NoiseSource  # noqa: E402
from sfbench.solvers.ddim import ddim, ddpm_ancestral  # noqa: E402
from sfbench.solvers.dpm_solver import dpm_solver_pp_2m  # noqa: E402
from sfbench.solvers.edm import edm_heun  # noqa: E402
from sfbench.solvers.grids import get_grid  # noqa: E402

TOL = 1e-10
N_SAMPLES = 32



# ----------------------------------------------------------------------------- helpers


class _KeepFloat64(torch.Tensor):
    """A tensor whose ``.to(torch.float32)`` returns itself (see the module doc).

    Only the float32 cast is skipped; every other operation is torch's own, and results
    stay of this class so that later casts inside the same step are skipped too.
    """

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.to and (
            torch.float32 in args[1:] or kwargs.get("dtype") is torch.float32
        ):
            return args[0]
        return super().__torch_function__(func, types, args, kwargs)


def _plain(x: torch.Tensor) -> torch.Tensor:
    return x.as_subclass(torch.Tensor)


def _setup(steps_seed: int = 7):
    schedule = DDPMSchedule()
    model = GaussianMixtureOracle(get_dataset("gmm_aniso").mixture, schedule)
    noise = NoiseSource(seed=steps_seed, n_samples=N_SAMPLES)
    x = noise.initial((2,), std=schedule.prior_std(), dtype=torch.float64)
    return schedule, model, noise, x


def _betas(schedule: DDPMSchedule) -> torch.Tensor:
    """The DDPM paper's linear betas in float64 (the ones DDPMSchedule integrates)."""
    return torch.linspace(
        schedule.beta_start, schedule.beta_end, schedule.num_steps, dtype=torch.float64
    )


def _t_of(j: float, schedule: DDPMSchedule) -> float:
    """sfbench's time of diffusers' (integer) timestep j: t = 1 - (j + 1) / T."""
    assert float(j) == round(float(j)), f"timestep {j} is not on the integer lattice"
    return 1.0 - (round(float(j)) + 1) / schedule.num_steps


def _scheduler(cls, schedule: DDPMSchedule, **config):
    """A diffusers scheduler with the DDPM betas, its alpha tables in float64."""
    betas = _betas(schedule)
    sch = cls(num_train_timesteps=schedule.num_steps, trained_betas=betas.numpy(), **config)
    # The constructor cast the betas to float32: within float32 rounding they are ours.
    torch.testing.assert_close(sch.betas.double(), betas, rtol=1e-6, atol=0)
    sch.betas = betas
    sch.alphas = 1.0 - betas
    sch.alphas_cumprod = torch.cumprod(sch.alphas, dim=0)
    if hasattr(sch, "final_alpha_cumprod"):  # DDIM, set_alpha_to_one=False
        assert not sch.config.set_alpha_to_one
        sch.final_alpha_cumprod = sch.alphas_cumprod[0]
    if hasattr(sch, "one"):  # DDPM
        sch.one = torch.tensor(1.0, dtype=torch.float64)
    if hasattr(sch, "lambda_t"):  # DPM-Solver's constructor tables
        sch.alpha_t = sch.alphas_cumprod.sqrt()
        sch.sigma_t = (1.0 - sch.alphas_cumprod).sqrt()
        sch.lambda_t = sch.alpha_t.log() - sch.sigma_t.log()
    return sch


def _levels(sch) -> torch.Tensor:
    """sigma = sqrt((1 - ab) / ab) of every train timestep, float64."""
    ab = sch.alphas_cumprod
    return ((1.0 - ab) / ab).sqrt()


def _set_float64_sigmas(sch, levels: torch.Tensor) -> None:
    """Replace the float32 ``sch.sigmas`` that set_timesteps made by ``levels`` (float64)."""
    assert levels.shape == sch.sigmas.shape
    torch.testing.assert_close(sch.sigmas.double(), levels, rtol=2e-6, atol=0)
    sch.sigmas = levels


def _grid_of(timesteps, schedule: DDPMSchedule, end: float) -> torch.Tensor:
    """sfbench's grid of diffusers' timesteps: their times, then ``end`` (t_end or 1)."""
    ts = [_t_of(j, schedule) for j in timesteps] + [end]
    return torch.tensor(ts, dtype=torch.float64)


def _run_sfbench(solver, model, x, grid, noise, **options):
    """sfbench's states at every grid point and its NFE."""
    counted = CountingModel(model)
    states: list[torch.Tensor] = []
    solver(counted, x, grid, noise, callback=lambda i, t, y: states.append(y), **options)
    return states, counted.nfe


class _Unet:
    """The oracle as an eps-predicting "unet" on diffusers' timesteps; counts its calls."""

    def __init__(self, model, schedule):
        self.model, self.schedule, self.nfe = model, schedule, 0

    def __call__(self, x: torch.Tensor, timestep) -> torch.Tensor:
        self.nfe += 1
        return self.model.predict(_plain(x), _t_of(timestep, self.schedule)).eps


def _compare(name: str, ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    """Assert both trajectories agree at every matched point to TOL; the largest difference."""
    assert len(ours) == len(theirs), f"{len(ours)} sfbench states against {len(theirs)}"
    worst = 0.0
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        diff = float((a - _plain(b)).abs().max())
        where = f"after step {i} (of {len(ours) - 1})"
        assert diff <= TOL, f"{name}: states differ by {diff:.3e} {where}"
        worst = max(worst, diff)
    print(f"{name}: max |sfbench - diffusers| = {worst:.2e}")  # shown with pytest -s
    return worst


# ----------------------------------------------------------------------------- grids


@pytest.mark.parametrize("steps", [1, 3, 10, 16, 50, 250])
def test_default_uniform_grid_on_ddpm_is_diffusers_trailing(steps):
    """sfbench's default ``uniform`` grid on a DDPM model is diffusers' "trailing" spacing.

    diffusers' trailing timesteps j_i = round(T - i T / N) - 1 (numpy rounding, halves to
    even: N = 16 has halves) are the lattice steps k_i = j_i + 1; sfbench's grid is those
    times followed by t_end (k = 1), the end diffusers reaches with alphas_cumprod[0].
    """
    schedule = DDPMSchedule()
    sch = DDIMScheduler(num_train_timesteps=schedule.num_steps, timestep_spacing="trailing")
    sch.set_timesteps(steps)
    expected = _grid_of(sch.timesteps.tolist(), schedule, schedule.t_end)
    grid = get_grid("uniform")(steps, schedule)
    assert grid.dtype == torch.float64
    assert grid.tolist() == expected.tolist()


# ----------------------------------------------------------------------------- DDIM / DDPM


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_matches_diffusers_ddim(eta, steps):
    """``ddim`` (eta 0 and 1) against DDIMScheduler, same posterior draws.

    DDIMScheduler(trailing spacing, set_alpha_to_one=False, clip_sample=False): steps
    divide T, since its step goes to timestep - T // N whatever the spacing. The eta = 1
    noise is sfbench's standardised Brownian increment of each step, passed to diffusers as
    ``variance_noise``.
    """
    schedule, model, noise, x = _setup()
    sch = _scheduler(
        DDIMScheduler, schedule, clip_sample=False, set_alpha_to_one=False,
        timestep_spacing="trailing",
    )
    sch.set_timesteps(steps)
    grid = _grid_of(sch.timesteps.tolist(), schedule, schedule.t_end)
    ours, nfe = _run_sfbench(ddim, model, x, grid, noise, eta=eta)

    unet, y, theirs = _Unet(model, schedule), x.clone(), [x.clone()]
    times = grid.tolist()
    for i, j in enumerate(sch.timesteps):
        z = noise.step_normal(times[i], times[i + 1], y) if eta > 0 else None
        y = sch.step(unet(y, j), j, y, eta=eta, variance_noise=z).prev_sample
        theirs.append(y)
    _compare(f"ddim eta={eta} N={steps}", ours, theirs)
    assert nfe == unet.nfe == steps


@pytest.mark.parametrize("chain", ["trailing10", "full"])
def test_ddpm_ancestral_matches_diffusers_ddpm(chain, monkeypatch):
    """``ddpm_ancestral`` against DDPMScheduler (fixed_small = beta-tilde), same draws.

    Timesteps: trailing j_i followed by 0 (DDPMScheduler's custom timesteps), so its step
    from the last trailing timestep ends at alphas_cumprod[0] = sfbench's t_end; the step
    from 0 to alphabar = 1 (Ho et al.'s noise-free last step) is not taken, as in sfbench.
    "full" is Ho et al.'s whole chain, timesteps 999 .. 1 (k = 1000 .. 2) then 0.
    DDPMScheduler draws its noise with ``randn_tensor`` and has no ``variance_noise``, so
    the test replaces that function (in diffusers' DDPM module only) by one that hands over
    sfbench's draw of the step and checks that each step draws exactly once.
    """
    schedule, model, noise, x = _setup()
    sch = _scheduler(DDPMScheduler, schedule, clip_sample=False)
    T = schedule.num_steps
    if chain == "full":
        trailing = list(range(T - 1, 0, -1))
    else:
        trailing = [round(T - i * T / 10) - 1 for i in range(10)]
    steps = len(trailing)
    sch.set_timesteps(timesteps=trailing + [0])
    grid = _grid_of(trailing, schedule, schedule.t_end)
    ours, nfe = _run_sfbench(ddpm_ancestral, model, x, grid, noise)

    pending: list[torch.Tensor] = []

    def sfbench_draw(shape, generator=None, device=None, dtype=None, **_):
        z = pending.pop()
        assert tuple(z.shape) == tuple(shape) and dtype == z.dtype
        return z

    monkeypatch.setattr(scheduling_ddpm, "randn_tensor", sfbench_draw)
    unet, y, theirs = _Unet(model, schedule), x.clone(), [x.clone()]
    times = grid.tolist()
    for i, j in enumerate(sch.timesteps[:-1]):  # the step from timestep 0 is not taken
        pending.append(noise.step_normal(times[i], times[i + 1], y))
        y = sch.step(unet(y, j), j, y).prev_sample
        assert not pending, "DDPMScheduler did not draw the step's noise"
        theirs.append(y)
    _compare(f"ddpm_ancestral {chain}", ours, theirs)
    assert nfe == unet.nfe == steps


# ----------------------------------------------------------------------------- Euler


@pytest.mark.parametrize("steps", [10, 25])
def test_ddim_eta0_matches_diffusers_euler(steps):
    """``ddim`` at eta = 0 against EulerDiscreteScheduler (Euler in sigma on x / alpha).

    EulerDiscreteScheduler(trailing spacing, final_sigmas_type="sigma_min"): its last
    sigma is that of alphas_cumprod[0], sfbench's t_end.
    """
    schedule, model, noise, x = _setup()
    sch = _scheduler(
        EulerDiscreteScheduler, schedule, timestep_spacing="trailing",
        final_sigmas_type="sigma_min",
    )
    sch.set_timesteps(steps)
    js = sch.timesteps.round().long()
    levels = _levels(sch)
    _set_float64_sigmas(sch, torch.cat([levels[js], levels[:1]]))
    grid = _grid_of(js.tolist(), schedule, schedule.t_end)
    ours, nfe = _run_sfbench(ddim, model, x, grid, noise, eta=0.0)

    unet = _Unet(model, schedule)
    alpha = 1.0 / (1.0 + sch.sigmas**2).sqrt()  # state of Euler = x / alpha
    y, theirs = x / alpha[0], [x.clone()]
    for i, j in enumerate(sch.timesteps):
        eps = unet(sch.scale_model_input(y, j), j)
        y = sch.step(eps, j, y.as_subclass(_KeepFloat64)).prev_sample
        theirs.append(alpha[i + 1] * _plain(y))
    _compare(f"euler N={steps}", ours, theirs)
    assert nfe == unet.nfe == steps


# ----------------------------------------------------------------------------- DPM-Solver++


def _dpm_diffusers(model, schedule, x, steps, lower_order_final):
    """DPMSolverMultistepScheduler (dpmsolver++, order 2, midpoint; trailing spacing,
    final_sigmas_type="sigma_min"): states, NFE and the sfbench grid of its timesteps."""
    sch = _scheduler(
        DPMSolverMultistepScheduler, schedule, algorithm_type="dpmsolver++", solver_order=2,
        solver_type="midpoint", lower_order_final=lower_order_final,
        timestep_spacing="trailing", final_sigmas_type="sigma_min",
    )
    sch.set_timesteps(steps)
    levels = _levels(sch)
    _set_float64_sigmas(sch, torch.cat([levels[sch.timesteps], levels[:1]]))
    unet, y, theirs = _Unet(model, schedule), x.clone(), [x.clone()]
    for j in sch.timesteps:
        eps = unet(sch.scale_model_input(y, j), j)
        y = _plain(sch.step(eps, j, y.as_subclass(_KeepFloat64)).prev_sample)
        theirs.append(y)
    grid = _grid_of(sch.timesteps.tolist(), schedule, schedule.t_end)
    return theirs, unet.nfe, grid


@pytest.mark.parametrize("lower_order_final", [False, True])
def test_dpm_solver_pp_2m_lower_order_final_matches_diffusers(lower_order_final):
    """``dpm_solver_pp_2m(lower_order_final=...)`` against diffusers' option of that name.

    At N = 10 < 15 diffusers' ``lower_order_final=True`` makes the last step first order;
    False keeps it second order. The two differ here by far more than the tolerance, so
    each case tells them apart.
    """
    schedule, model, noise, x = _setup()
    steps = 10
    theirs, their_nfe, grid = _dpm_diffusers(model, schedule, x, steps, lower_order_final)
    other, _, _ = _dpm_diffusers(model, schedule, x, steps, not lower_order_final)
    assert float((theirs[-1] - other[-1]).abs().max()) > 1e3 * TOL
    ours, nfe = _run_sfbench(
        dpm_solver_pp_2m, model, x, grid, noise, lower_order_final=lower_order_final
    )
    _compare(f"dpm_solver_pp_2m lower_order_final={lower_order_final}", ours, theirs)
    assert nfe == their_nfe == steps


@pytest.mark.parametrize("steps", [10, 20])
def test_dpm_solver_pp_2m_default_matches_diffusers_default(steps):
    """sfbench's default (auto: first-order final step below 15 steps) is diffusers' default
    ``lower_order_final=True``, at N = 10 (the final step is first order) and N = 20 (not)."""
    schedule, model, noise, x = _setup()
    theirs, their_nfe, grid = _dpm_diffusers(model, schedule, x, steps, True)
    ours, nfe = _run_sfbench(dpm_solver_pp_2m, model, x, grid, noise)
    _compare(f"dpm_solver_pp_2m default N={steps}", ours, theirs)
    assert nfe == their_nfe == steps


# ----------------------------------------------------------------------------- Heun


@pytest.mark.parametrize("spacing", ["linspace", "trailing"])
def test_edm_heun_matches_diffusers_heun(spacing):
    """``edm_heun`` (no churn) against HeunDiscreteScheduler, states and NFE.

    HeunDiscreteScheduler ends at sigma = 0 (t = 1) with an Euler step there, so it costs
    2N - 1 NFE; sfbench's grid is its timesteps followed by t = 1. N = 10: diffusers'
    default "linspace" timesteps are then integers (999, 888, ..., 0; the last step goes
    from k = 1 to the data) and "trailing" ones are (999, 899, ..., 99).
    """
    schedule, model, noise, x = _setup()
    steps = 10
    sch = _scheduler(HeunDiscreteScheduler, schedule, timestep_spacing=spacing)
    sch.set_timesteps(steps)
    js = sch.timesteps[::2].round().long()  # [j_0, j_1, j_1, j_2, j_2, ...] -> the j_i
    assert len(js) == steps
    levels = torch.cat([_levels(sch)[js], torch.zeros(1, dtype=torch.float64)])
    repeats = torch.full((steps + 1,), 2)
    repeats[0] = repeats[-1] = 1
    _set_float64_sigmas(sch, levels.repeat_interleave(repeats))
    grid = _grid_of(js.tolist(), schedule, 1.0)
    ours, nfe = _run_sfbench(edm_heun, model, x, grid, noise)

    unet = _Unet(model, schedule)
    alpha = 1.0 / (1.0 + levels**2).sqrt()
    y, theirs = x / alpha[0], [x.clone()]
    for n, j in enumerate(sch.timesteps):
        eps = unet(sch.scale_model_input(y, j), j)
        y = sch.step(eps, j, y).prev_sample
        # A Heun step ends after its second stage; the last (Euler) step after its first.
        if sch.state_in_first_order or n == len(sch.timesteps) - 1:
            theirs.append(alpha[len(theirs)] * y)
    _compare(f"edm_heun {spacing}", ours, theirs)
    assert unet.nfe == len(sch.timesteps) == 2 * steps - 1
    assert nfe == unet.nfe

