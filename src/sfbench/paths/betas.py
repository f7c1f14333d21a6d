r"""The named beta schedules of discrete-time diffusion models, in float64.

A discrete DDPM model of T steps is fixed by its betas beta_1..beta_T
(alphabar_k = prod_{i <= k} (1 - beta_i)). Models trained elsewhere name them
as diffusers' schedulers do (``beta_schedule`` with ``beta_start``,
``beta_end``, ``num_train_timesteps``; diffusers documentation, "DDPMScheduler"),
so the same names and formulas are used here, computed in float64 instead of
diffusers' float32 so that the schedule is exact to float64:

- ``linear``: linspace(beta_start, beta_end, T) (Ho et al. 2020);
- ``scaled_linear``: linspace(sqrt(beta_start), sqrt(beta_end), T)^2 (the
  latent-diffusion schedule, Rombach et al. 2022);
- ``squaredcos_cap_v2``: the cosine schedule of Nichol & Dhariwal (2021, eq. 17),
  alphabar(u) = cos((u + 0.008) / 1.008 * pi / 2)^2,
  beta_i = min(1 - alphabar(i / T) / alphabar((i - 1) / T), 0.999); beta_start and
  beta_end do not enter;
- ``sigmoid``: sigmoid(linspace(-6, 6, T)) (beta_end - beta_start) + beta_start
  (GeoDiff, Xu et al. 2022).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Cap of the cosine schedule's betas (Nichol & Dhariwal 2021: "to prevent singularities").
COSINE_MAX_BETA = 0.999


def _cosine(num_steps: int) -> Tensor:
    def alphabar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor(
        [min(1.0 - alphabar((i + 1) / num_steps) / alphabar(i / num_steps), COSINE_MAX_BETA)
         for i in range(num_steps)],
        dtype=torch.float64,
    )


BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")


def make_betas(beta_schedule: str, beta_start: float, beta_end: float, num_steps: int) -> Tensor:
    """beta_1..beta_T of a named schedule (module doc), float64 of shape [num_steps].

    Raises:
        ValueError: for a name not in :data:`BETA_SCHEDULES` (the message lists them).
    """
    if beta_schedule == "linear":
        return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    if beta_schedule == "scaled_linear":
        root = torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float64)
        return root**2
    if beta_schedule == "squaredcos_cap_v2":
        return _cosine(num_steps)
    if beta_schedule == "sigmoid":
        u = torch.linspace(-6.0, 6.0, num_steps, dtype=torch.float64)
        return torch.sigmoid(u) * (beta_end - beta_start) + beta_start
    raise ValueError(
        f"unknown beta_schedule {beta_schedule!r}; valid: {', '.join(BETA_SCHEDULES)}"
    )


def check_betas(betas: Tensor) -> Tensor:
    """``betas`` as a float64 vector, refused unless every beta lies in (0, 1).

    beta = 1 makes alphabar zero from that step on (zero terminal SNR): the
    noise end then carries no signal, alpha = 0, and log alpha, which the
    schedule interpolates, is -inf.
    """
    betas = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if betas.numel() < 1:
        raise ValueError("betas must hold at least one value")
    if not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError(
            f"every beta must lie in (0, 1), got values in [{float(betas.min())}, "
            f"{float(betas.max())}] (beta = 1 is zero terminal SNR, which sfbench's "
            "log-alpha spline cannot represent)"
        )
    return betas
