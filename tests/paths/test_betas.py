"""Named beta schedules: diffusers' values to float32 rounding; the linear default unchanged."""

from __future__ import annotations

import pytest
import torch

from sfbench.paths import DDPMSchedule
from sfbench.paths.betas import BETA_SCHEDULES, make_betas

diffusers = pytest.importorskip("diffusers")


@pytest.mark.parametrize("name", BETA_SCHEDULES)
def test_betas_equal_diffusers(name):
    """Computed in float64 here, in float32 by diffusers: equal to float32 rounding."""
    config = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
              "beta_schedule": name}
    ref = diffusers.DDPMScheduler.from_config(config).betas.double()
    ours = make_betas(name, 0.00085, 0.012, 1000)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, rtol=2e-6, atol=1e-9)


def test_linear_default_is_the_old_schedule():
    """Records of old runs compare equal: same keys, same floats as before explicit betas."""
    s = DDPMSchedule()
    assert s.describe() == {"name": "ddpm", "t_start": 0.0, "t_end": 1.0 - 1.0 / 1000,
                            "beta_start": 1e-4, "beta_end": 0.02, "num_steps": 1000}
    assert torch.equal(s.betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    alphabar = torch.cumprod(1 - s.betas, 0)
    torch.testing.assert_close(s(s.t_of_step(torch.arange(1, 1001))).alpha ** 2, alphabar,
                               rtol=1e-12, atol=0)


def test_explicit_betas_are_the_named_ones_and_say_so():
    betas = make_betas("scaled_linear", 0.00085, 0.012, 50)
    named = DDPMSchedule(0.00085, 0.012, 50, beta_schedule="scaled_linear")
    trained = DDPMSchedule(betas=betas)
    t = named.t_of_step(torch.arange(51))
    assert torch.equal(named(t).alpha, trained(t).alpha)
    assert named.describe()["beta_schedule"] == "scaled_linear"
    assert trained.describe()["beta_schedule"] == "trained" and trained.num_steps == 50
    assert len(trained.describe()["betas_sha256"]) == 64
    alphabar = torch.cumprod(1 - betas, 0)
    torch.testing.assert_close(named(t[1:]).alpha ** 2, alphabar, rtol=1e-12, atol=0)


@pytest.mark.parametrize("betas", [[0.1, 1.0], [0.0, 0.1], []])
def test_betas_outside_the_open_unit_interval_are_refused(betas):
    with pytest.raises(ValueError, match="beta"):
        DDPMSchedule(betas=betas)


def test_unknown_beta_schedule_lists_the_valid_ones():
    with pytest.raises(ValueError, match="squaredcos_cap_v2"):
        DDPMSchedule(beta_schedule="quadratic")
