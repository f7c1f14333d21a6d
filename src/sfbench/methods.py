"""The method registry: each method is a composition, not a class.

A method is (schedule, coupling, prediction target, loss weighting,
t-density, output scaling). Adding a method is one entry in :data:`METHODS`, or,
from another package, one entry point (:mod:`sfbench.plugins`, docs/EXTENDING.md).

| method             | path                          | predicts | weighting | t-density            |
|--------------------|-------------------------------|----------|-----------|----------------------|
| ddpm               | discrete VP, T = 1000         | eps      | 1         | uniform step k       |
| dsm                | VE, geometric sigma           | score    | sigma^2   | uniform t            |
| probability_flow   | continuous VP-SDE             | score    | sigma^2   | uniform t            |
| cfm                | Lipman OT path                | velocity | 1         | uniform t            |
| ot_cfm             | Lipman OT path, minibatch OT  | velocity | 1         | uniform t            |
| rectified_flow     | linear path                   | velocity | 1         | uniform t            |

Methods trained on given (noise, data) pairs instead of the dataset live in
:data:`PAIRED_METHODS` (``sfbench train --pairs``; :mod:`sfbench.reflow`):

| method             | path                          | predicts | weighting | t-density            |
|--------------------|-------------------------------|----------|-----------|----------------------|
| reflow             | linear path, given pairs      | velocity | 1         | uniform t            |
| distill            | linear path, given pairs      | velocity | 1         | t = t_start only     |

``reflow`` is 2-rectified flow (Liu et al. 2023, sec. 2.2): the pairs are
(z, ODE_1RF(z)). ``distill`` regresses v(x0, 0) onto x1 - x0, so one Euler
step x0 + v(x0, 0) is the learned one-step map; the network is trained only
at t = 0, so its model is *one-step*: :func:`sfbench.sampling.generate`
refuses any other solver or step count. They are kept out of
:data:`METHODS`, the grid of methods trained on a dataset.

Score models use the output scaling score = net(x, t) / sigma_t (NCSNv2's
technique 3, also used by score_sde): the raw score spans four orders of
magnitude over the VE path and an unscaled network cannot represent it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sfbench import plugins
from sfbench.couplings import COUPLINGS, PAIRS
from sfbench.paths import (
    DDPMSchedule,
    OTSchedule,
    RectifiedFlowSchedule,
    Schedule,
    ScheduleOutput,
    VESchedule,
    VPSchedule,
)

Weighting = Callable[[ScheduleOutput], Tensor]
TDensity = Callable[[int, torch.Generator, Schedule, torch.device], Tensor]


def unit_weight(c: ScheduleOutput) -> Tensor:
    return torch.ones_like(c.sigma)


def sigma_squared_weight(c: ScheduleOutput) -> Tensor:
    """lambda(t) = sigma_t^2 (Song & Ermon 2019): equalises the score loss across noise levels."""
    return c.sigma**2


def uniform_t(n: int, gen: torch.Generator, schedule: Schedule, device: torch.device) -> Tensor:
    """t ~ U[0, t_train_end] (t_train_end < 1 where the score is singular at the data)."""
    return schedule.t_train_end * torch.rand(n, generator=gen, device=device)


def t_start_only(n: int, gen: torch.Generator, schedule: Schedule, device: torch.device) -> Tensor:
    """t = t_start (noise) for every sample: the one time a one-step map is evaluated at."""
    return torch.full((n,), float(schedule.t_start), device=device)


def uniform_ddpm_step(
    n: int, gen: torch.Generator, schedule: Schedule, device: torch.device
) -> Tensor:
    """k ~ U{1, ..., T} as in Ho et al. (2020), mapped to t = 1 - k / T."""
    assert isinstance(schedule, DDPMSchedule)
    k = torch.randint(1, schedule.num_steps + 1, (n,), generator=gen, device=device)
    return schedule.t_of_step(k).to(torch.float32)


@dataclass(frozen=True)
class Method:
    name: str
    make_schedule: Callable[..., Schedule]
    target: str
    weighting: Weighting
    t_density: TDensity
    coupling: str = "independent"
    output_scaling: str = "none"  # "none" or "inverse_sigma"
    description: str = ""
    # True when the network is trained only at t_start, so the one valid sampler
    # is a single Euler step (a distilled one-step map).
    one_step: bool = False
    schedule_defaults: dict = field(default_factory=dict)
    # A paired method's teacher: the method whose probability-flow ODE maps the noise
    # to the data side of its (noise, data) pairs (reflow: the 1-RF model it refines).
    teacher: str | None = None

    def schedule(self, **overrides) -> Schedule:
        return self.make_schedule(**{**self.schedule_defaults, **overrides})

    def describe(self) -> dict:
        return {
            "name": self.name,
            "target": self.target,
            "weighting": self.weighting.__name__,
            "t_density": self.t_density.__name__,
            "coupling": self.coupling,
            "output_scaling": self.output_scaling,
            "one_step": self.one_step,
        }

    @property
    def needs_pairs(self) -> bool:
        """Trained on given (noise, data) pairs (``sfbench train --pairs``), not on a dataset."""
        return self.coupling == PAIRS


_BUILTIN_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "ddpm",
            DDPMSchedule,
            "eps",
            unit_weight,
            uniform_ddpm_step,
            description="DDPM, eps prediction, L_simple (Ho et al. 2020)",
        ),
        Method(
            "dsm",
            VESchedule,
            "score",
            sigma_squared_weight,
            uniform_t,
            output_scaling="inverse_sigma",
            description="Denoising score matching on the VE path (NCSN, Song & Ermon 2019/2020)",
        ),
        Method(
            "probability_flow",
            VPSchedule,
            "score",
            sigma_squared_weight,
            uniform_t,
            output_scaling="inverse_sigma",
            description="VP-SDE score model, continuous-time DSM (Song et al. 2021)",
        ),
        Method(
            "cfm",
            OTSchedule,
            "velocity",
            unit_weight,
            uniform_t,
            description="Conditional flow matching on the OT path (Lipman et al. 2023)",
        ),
        Method(
            "ot_cfm",
            OTSchedule,
            "velocity",
            unit_weight,
            uniform_t,
            coupling="ot",
            description="CFM with the exact minibatch OT coupling (Tong et al. 2024)",
        ),
        Method(
            "rectified_flow",
            RectifiedFlowSchedule,
            "velocity",
            unit_weight,
            uniform_t,
            description="Rectified flow, linear path, velocity = x_data - noise (Liu et al. 2023)",
        ),
    )
}

PAIRED_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "reflow",
            RectifiedFlowSchedule,
            "velocity",
            unit_weight,
            uniform_t,
            coupling=PAIRS,
            teacher="rectified_flow",
            description="2-rectified flow: the linear path on pairs (z, ODE_1RF(z)) (Liu 2023)",
        ),
        Method(
            "distill",
            RectifiedFlowSchedule,
            "velocity",
            unit_weight,
            t_start_only,
            coupling=PAIRS,
            one_step=True,
            teacher="reflow",
            description="one-step distillation: v(x0, 0) regressed on x1 - x0 (Liu et al. 2023)",
        ),
    )
}

for _m in (*_BUILTIN_METHODS.values(), *PAIRED_METHODS.values()):
    assert _m.coupling in COUPLINGS, _m
    assert (_m.name in PAIRED_METHODS) == _m.needs_pairs == (_m.teacher is not None), _m


def _check_plugin(name: str, method) -> str | None:
    """A plug-in method trains on a dataset: the reflow chain (paired methods) is fixed."""
    problem = plugins.instance_of(Method)(name, method)
    if problem:
        return problem
    if name in PAIRED_METHODS:
        return f"{name!r} is a built-in paired method of sfbench"
    if method.coupling not in COUPLINGS:
        return f"unknown coupling {method.coupling!r}; valid: {', '.join(COUPLINGS)}"
    if method.needs_pairs or method.teacher is not None:
        return "a plug-in method trains on a dataset; paired methods (reflow) are built in only"
    return None


#: Methods trained on a dataset: the built-ins above, then the ``sfbench.methods``
#: plug-ins (:mod:`sfbench.plugins`), loaded when the registry is first read.
METHODS: plugins.Registry[Method] = plugins.Registry(
    plugins.GROUPS["methods"], _BUILTIN_METHODS, _check_plugin
)


def get_method(name: str) -> Method:
    """The method called ``name`` (either registry); the error lists the valid names."""
    found = METHODS.get(name) or PAIRED_METHODS.get(name)
    if found is None:
        valid = ", ".join(sorted({**METHODS, **PAIRED_METHODS}))
        raise ValueError(f"unknown method {name!r}; valid methods: {valid}")
    return found
