"""Tiny external models the tests write themselves (nothing is downloaded): a random
diffusers UNet2DModel directory, and a plain PyTorch velocity network with its spec file."""

from __future__ import annotations

import textwrap

import torch

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
    import diffusers

    torch.manual_seed(seed)
    net = diffusers.UNet2DModel(**{**UNET, **(unet or {})})
    net.save_pretrained(directory)
    (scheduler_cls or diffusers.DDIMScheduler)(**scheduler).save_pretrained(directory)
    return directory


NETWORK = textwrap.dedent('''
    import torch
    from torch import nn


    class Velocity(nn.Module):
        """A small velocity field v(x, t); reverse_time: the same field in diffusion time
        s = 1 - t, whose velocity is dx/ds = -v; t_first: called as net(t, x)."""

        def __init__(self, hidden=16, reverse_time=False, t_first=False):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, hidden), nn.Tanh(), nn.Linear(hidden, 2))
            self.reverse_time, self.t_first = reverse_time, t_first

        def forward(self, a, b):
            x, t = (b, a) if self.t_first else (a, b)
            if self.reverse_time:
                return -self.body(torch.cat([x, (1 - t)[:, None]], 1))
            return self.body(torch.cat([x, t[:, None]], 1))


    def make(**kwargs):
        return Velocity(**kwargs)


    NOT_CALLABLE = 3


    def not_a_module():
        return "a string"
''')


def write_spec(directory, stem, **fields):
    lines = [f"{k}: {v}" for k, v in {"kind": "torch", "schedule": "{name: rectified_flow}",
                                       "prediction": "velocity", "time": "data_at_1",
                                       "sample_shape": "[2]", **fields}.items()]
    path = directory / f"{stem}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
