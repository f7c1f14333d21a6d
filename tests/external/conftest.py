"""Tiny external models written by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

#: An 8x8 one-channel unconditional UNet2DModel small enough for CPU tests.
UNET = dict(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
            norm_num_groups=4, layers_per_block=1, attention_head_dim=4,
            down_block_types=("DownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "UpBlock2D"))

#: DDIM settings that match sfbench's ddim on its trailing lattice (see
#: tests/solvers/test_diffusers_conformance.py): no x0 clipping, last step to alphas_cumprod[0].
DDIM = dict(clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")


def write_unet(directory, scheduler_cls=None, seed: int = 0, unet=None, **scheduler):
    """A random UNet2DModel and a scheduler config saved into ``directory``; returns it."""
    torch.manual_seed(seed)
    net = diffusers.UNet2DModel(**{**UNET, **(unet or {})})
    net.save_pretrained(directory)
    (scheduler_cls or diffusers.DDIMScheduler)(**scheduler).save_pretrained(directory)
    return directory


@pytest.fixture
def unet_dir(tmp_path):
    return write_unet(tmp_path / "unet", diffusers.DDIMScheduler, **DDIM)
