"""Rectified flow with the logit-normal t-density of Esser et al. (2024).

"Scaling Rectified Flow Transformers" (Esser et al., ICML 2024, sec. 3.1)
trains rectified flow with t = sigmoid(u), u ~ N(m, s^2): more weight on the
middle of the path, where the velocity is hardest to predict, and less on the
ends. They found m = 0, s = 1 best; the density is symmetric, so sfbench's
t = 0 noise / t = 1 data convention does not change it.
"""

import torch

from sfbench.methods import Method, unit_weight
from sfbench.paths import RectifiedFlowSchedule

LOCATION, SCALE = 0.0, 1.0


def logit_normal_t(n, gen, schedule, device):
    """t = sigmoid(u), u ~ N(LOCATION, SCALE^2), scaled onto [0, t_train_end]."""
    u = LOCATION + SCALE * torch.randn(n, generator=gen, device=device)
    return schedule.t_train_end * torch.sigmoid(u)


RF_LOGIT_NORMAL = Method(
    "rf_logit_normal",  # must equal the entry point's name
    RectifiedFlowSchedule,
    "velocity",
    unit_weight,
    logit_normal_t,
    description="Rectified flow, logit-normal t-density (Esser et al. 2024)",
)
