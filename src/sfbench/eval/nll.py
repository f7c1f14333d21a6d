r"""Negative log-likelihood through the probability-flow ODE (instantaneous change of variables).

Along the ODE dx/dt = v(x, t) of any path model (t = 0 noise, t = 1 data),
the log-density of the transported point obeys

.. math:: \frac{d}{dt} \log p_t(x_t) = -\nabla \cdot v(x_t, t)

(Chen et al. 2018, Theorem 1; reference 002, sections 2.2 and 4.1 -- the boxed
"total change" of 2.2 has the opposite sign of its own ODE; 4.1 is right).
Integrating from the data end t_1 = ``t_end`` back to the noise end t_0 = ``t_start``,

.. math::
    \log p_{t_1}(x) = \log \pi(x_{t_0}) - \int_{t_0}^{t_1} \nabla \cdot v(x_t, t)\, dt
                    = \log \pi(x_{t_0}) + \int_{t_1}^{t_0} \nabla \cdot v(x_t, t)\, dt,

with the prior pi = N(0, sigma_{t_0}^2 I). :func:`nll_nats` solves the
augmented state (x, delta) with d delta/dt = div v and delta(t_1) = 0 from
t_1 down to t_0, so that log p(x) = log pi(x_{t_0}) + delta(t_0).

Two approximations are made, and ``settings`` records what they depend on
(``prior_std``, ``t_start``, ``t_end``):

- the prior drops the data term alpha_{t_0} x_data of the noise-end marginal.
  It is exactly zero on the flow paths and ~1e-4 nats on VP/DDPM (alpha_0 =
  6.6e-3), but on VE paths alpha = 1 and the prior N(0, sigma_max^2 I) ignores
  the data's own spread (~0.03 nats per point on 8gaussians, sigma_max = 10);
- diffusion schedules stop at t_1 < 1, so the number is the NLL of p_{t_1},
  the law of alpha_{t_1} x_data + sigma_{t_1} eps, not of the data itself.

DDPM's continuous extension interpolates log alpha linearly between its T
steps, so its velocity has a kink at each step: dopri5 then needs ~10x the
evaluations of the VP path (2000 vs 180 at rtol 1e-6) for ~1e-3 nats.

Tolerances. ``rtol`` and ``atol`` mean what they mean for the sampler's
dopri5 (:func:`sfbench.solvers.ode.dopri5`), both through torchdiffeq: a step
is accepted when the root mean square, over the entries of the batch, of
error / (atol + rtol |y|) is at most 1 (Hairer, Norsett & Wanner, "Solving
ODEs I", sec. II.4, eq. 4.11). The NLL state has two parts, the points and
their log-density change; each part gets that RMS and the larger of the two
must be <= 1 (torchdiffeq's default for tuple states), so neither the
coordinates nor the log-density is held more loosely than a sampler solve
would hold them. Until issue 15 the NLL used the maximum over entries
instead, which at the same numbers is a stricter test and cost 1.3-1.65x the
steps of facebookresearch/flow_matching's likelihood.

The divergence estimators (exact, Hutchinson) live in
:mod:`sfbench.eval.divergence`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torchdiffeq import odeint

from sfbench.eval.divergence import (
    DIVERGENCES,
    EXACT_MAX_DIM,
    Divergence,
    exact_divergence,
    hutchinson_divergence,
    rademacher_probes,
)
from sfbench.model import PathModel, model_label


@dataclass(frozen=True)
class NLLResult:
    """Per-sample NLL in nats, its summary and the settings that produced it.

    ``nll_nats = -(prior_logp + delta_logp)``; ``latent`` is each point
    carried to the noise end t_start.
    """

    nll_nats: Tensor  # [N]
    mean_nats: float
    stderr_nats: float  # standard error of the mean, std / sqrt(N)
    nfe: int  # velocity evaluations (batched forward passes), summed over batches
    nfe_per_batch: tuple[int, ...]
    prior_logp: Tensor  # [N] log N(latent; 0, prior_std^2 I)
    delta_logp: Tensor  # [N] integral of div v from t_end down to t_start
    latent: Tensor  # [N, ...]
    settings: dict

    def summary(self) -> dict:
        """The numbers a result file records: mean, standard error, NFE, count and settings."""
        return {
            "nll_nats_mean": self.mean_nats,
            "nll_nats_stderr": self.stderr_nats,
            "nfe": self.nfe,
            "num_points": int(self.nll_nats.shape[0]),
            **self.settings,
        }


def _gaussian_logp(z: Tensor, std: float) -> Tensor:
    """log N(z; 0, std^2 I) per sample."""
    z = z.flatten(1)
    d = z.shape[1]
    return -0.5 * z.pow(2).sum(1) / std**2 - 0.5 * d * math.log(2 * math.pi * std**2)


def nll_nats(
    model: PathModel,
    x: Tensor,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    t_start: float | None = None,
    t_end: float | None = None,
    batch_size: int = 1000,
    divergence: str = "auto",
    n_probes: int = 1,
    probe_seed: int = 0,
    exact_chunk_size: int | None = None,
    max_num_steps: int = 10_000,
) -> NLLResult:
    r"""NLL in nats of each point of ``x`` ``[N, ...]`` under ``model``'s probability-flow ODE.

    Args:
        model: any :class:`~sfbench.model.PathModel` (a trained network or the oracle).
        x: data points; their dtype is the arithmetic dtype (float32 for
            networks, float64 for oracle checks).
        rtol, atol: dopri5 tolerances, with the sampler's meaning: the RMS
            over the batch's entries of the scaled error (the larger of its
            value over the coordinates and over the log-density) is <= 1
            (module doc).
        t_start, t_end: noise and data ends of the integration; default
            ``model.schedule.t_start`` / ``t_end`` (the truncation of a
            diffusion schedule). The prior std is sigma at ``t_start``.
        batch_size: samples per ODE solve.
        divergence: ``exact``, ``hutchinson`` or ``auto`` (:data:`DIVERGENCES`).
        n_probes: Rademacher probes per sample (Hutchinson only).
        probe_seed: seed of the probes; sample i uses (probe_seed, i).
        exact_chunk_size: basis vectors per vectorised backward pass of the
            exact divergence (default: ``VMAP_ROWS`` // batch rows per pass).
        max_num_steps: solver step limit per batch; exceeding it raises.

    Returns:
        :class:`NLLResult`, with log p_{t_end}(x) = prior_logp + delta_logp.
    """
    if model.one_step:
        # A distilled map is trained at t_start only: it defines no ODE whose
        # change of variables would give a density.
        raise ValueError(
            f"{model_label(model)} is a one-step model: it has no likelihood via the ODE"
        )
    if divergence not in DIVERGENCES:
        raise ValueError(f"unknown divergence {divergence!r}; valid: {', '.join(DIVERGENCES)}")
    if n_probes < 1:
        raise ValueError(f"n_probes must be positive, got {n_probes}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x must be [N, ...] with N >= 1, got shape {tuple(x.shape)}")
    n_bad = int((~torch.isfinite(x)).sum())
    if n_bad:
        raise ValueError(f"x (shape {tuple(x.shape)}) contains {n_bad} NaN or Inf values")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    schedule = model.schedule
    t0 = schedule.t_start if t_start is None else float(t_start)
    t1 = schedule.t_end if t_end is None else float(t_end)
    if not t0 < t1:
        raise ValueError(f"need t_start < t_end (noise end before data end), got {t0}, {t1}")
    prior_std = float(schedule(torch.tensor(t0, dtype=torch.float64)).sigma)
    dim = math.prod(x.shape[1:])
    if divergence == "auto":
        divergence = "exact" if dim <= EXACT_MAX_DIM else "hutchinson"

    nfe_per_batch, latents, deltas = [], [], []
    for start, chunk in zip(range(0, x.shape[0], batch_size), x.split(batch_size), strict=True):
        if divergence == "exact":
            div_fn = functools.partial(exact_divergence, chunk_size=exact_chunk_size)
        else:
            probes = rademacher_probes(
                probe_seed, start, tuple(chunk.shape), n_probes, chunk.dtype, chunk.device
            )
            div_fn = hutchinson_divergence(probes)
        z, delta, nfe = _integrate(model, chunk, t0, t1, rtol, atol, div_fn, max_num_steps)
        latents.append(z)
        deltas.append(delta)
        nfe_per_batch.append(nfe)
    latent, delta_logp = torch.cat(latents), torch.cat(deltas)
    prior_logp = _gaussian_logp(latent, prior_std)
    nll = -(prior_logp + delta_logp)
    n = nll.shape[0]
    stderr = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
    settings = {
        "solver": "dopri5",
        "rtol": rtol,
        "atol": atol,
        "error_norm": "rms per state part, max over parts",
        "t_start": t0,
        "t_end": t1,
        "divergence": divergence,
        **(
            {"n_probes": n_probes, "probe_seed": probe_seed, "probe": "rademacher, fixed in t"}
            if divergence == "hutchinson"
            else {}
        ),
        "dim": dim,
        "prior_std": prior_std,
        "batch_size": batch_size,
        "max_num_steps": max_num_steps,
        "dtype": str(x.dtype).removeprefix("torch."),
        "schedule": schedule.describe(),
    }
    return NLLResult(
        nll_nats=nll,
        mean_nats=float(nll.mean()),
        stderr_nats=stderr,
        nfe=sum(nfe_per_batch),
        nfe_per_batch=tuple(nfe_per_batch),
        prior_logp=prior_logp,
        delta_logp=delta_logp,
        latent=latent,
        settings=settings,
    )


def _integrate(
    model: PathModel,
    x: Tensor,
    t0: float,
    t1: float,
    rtol: float,
    atol: float,
    div_fn: Divergence,
    max_num_steps: int,
) -> tuple[Tensor, Tensor, int]:
    """Solve (x, delta) from t1 down to t0; return (x_{t0}, delta(t0), NFE)."""
    nfe = 0

    def augmented(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        nonlocal nfe
        nfe += 1
        v, div = div_fn(lambda y: model.predict(y, t).velocity, state[0])
        # d delta / dt = +div v: delta(t0) = int_{t1}^{t0} div v dt = -int_{t0}^{t1} div v dt.
        return v, div

    state0 = (x.detach(), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device))
    times = torch.tensor([t1, t0], dtype=torch.float64, device=x.device)
    with torch.no_grad():  # no graph through the solver; the divergence builds its own
        xs, deltas = odeint(
            augmented,
            state0,
            times,
            rtol=rtol,
            atol=atol,
            method="dopri5",
            # No "norm": torchdiffeq's default, the RMS of each part (module doc).
            options={"max_num_steps": max_num_steps},
        )
    return xs[-1], deltas[-1], nfe
