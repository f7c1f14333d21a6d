"""Default network of each data shape: the MLP for vectors, a U-Net sized by image resolution.

A training config's ``network`` entries override these (``sfbench train
--config``); the defaults are what a dataset gets when nothing is said.

U-Net sizes, and why. Training speed is :func:`sfbench.train.train` with
rectified flow, batch 128, fp32, on the 2-core development CPU shared with
other jobs (so +-30 %):

- 8x8 (digits): base 16, channel_mult (1, 2), one block per level, no
  attention, 0.16 M parameters: 16-22 steps/s on one thread (34 with two
  when the second core was free), so 1500 steps take 70-100 s. After 1500
  steps (lr 2e-3, 100 warm-up steps, batch 128) every method reached a
  classifier FID of 1.7-2.7 (1000 samples, heun 32 steps)
  against 11.3 for the Gaussian baseline and 1.1 for the train split
  itself. Base 32 (0.63 M) reached 1.6 for rectified flow but trains at
  6-9 steps/s, three times slower, for little gain.
- 28x28 (Fashion-MNIST): base 64, (1, 2, 2), two blocks, attention at 7x7.
- 32x32 (CIFAR-10): base 128, (1, 2, 2, 2), two blocks, attention at 4x4
  (Ho et al.'s 35.7 M network is base 128, (1, 2, 2, 2), 2 blocks, attention
  at 16x16; this is it with attention moved to the lowest resolution).
  The last two are GPU sizes, not measured here.

Time embedding scale (``time_embed_scale``), per time variable, chosen by
:func:`time_embed_scale` and written into the network spec (so into the
model file) when training starts. A discrete-time method (DDPM: t = 1 - k/T
on the step lattice) gets scale T, so the sinusoidal features see the step
index k as in Ho et al. (2020). A method with continuous t in [0, 1] gets
:data:`CONTINUOUS_TIME_EMBED_SCALE` = 30: on rectified flow, 8gaussians, it
cut dopri5 sampling NFE at rtol 1e-5 from 344 to 56 at the same W2 and NLL
(BENCHMARKS.md, "Time embedding scale"). Model files without the key were
trained with 1000 and load with it (the networks' default).
"""

from __future__ import annotations

import numpy as np

MLP_DEFAULT = {"kind": "mlp", "width": 128, "depth": 3, "activation": "silu", "time_embed_dim": 64}

UNET_PRESETS: dict[int, dict] = {
    8: {"base_channels": 16, "channel_mult": [1, 2], "num_res_blocks": 1, "attention": False},
    28: {"base_channels": 64, "channel_mult": [1, 2, 2], "num_res_blocks": 2, "attention": True},
    32: {"base_channels": 128, "channel_mult": [1, 2, 2, 2], "num_res_blocks": 2,
         "attention": True},
}


#: The sinusoidal embedding's factor on a continuous t in [0, 1] (measured; module doc).
CONTINUOUS_TIME_EMBED_SCALE = 30.0


def time_embed_scale(method: str, schedule: dict | None = None) -> float:
    """t's factor in the time embedding of a network for ``method`` (schedule overrides applied).

    A schedule on a step lattice (it has ``num_steps``: DDPM) gets its T; any
    continuous-time method gets :data:`CONTINUOUS_TIME_EMBED_SCALE`.
    """
    from sfbench.methods import get_method  # methods -> paths; keep models import-light

    built = get_method(method).schedule(**(schedule or {}))
    steps = getattr(built, "num_steps", None)
    return float(steps) if steps is not None else CONTINUOUS_TIME_EMBED_SCALE


def with_time_embed_scale(network: dict, method: str, schedule: dict | None = None) -> dict:
    """``network`` with its ``time_embed_scale`` set for ``method`` unless it already says one."""
    if "time_embed_scale" in network:
        return dict(network)
    return {**network, "time_embed_scale": time_embed_scale(method, schedule)}


def default_network(shape: tuple[int, ...]) -> dict:
    """The network spec a dataset of per-sample ``shape`` gets by default."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return {**MLP_DEFAULT, "dim": shape[0]}
    if len(shape) != 3:
        raise ValueError(f"no default network for samples of shape {list(shape)}")
    size = min(UNET_PRESETS, key=lambda s: (abs(s - shape[1]), s))
    return {"kind": "unet", "shape": list(shape), **UNET_PRESETS[size]}


def network_for(shape: tuple[int, ...], user: dict | None = None) -> dict:
    """The network spec for data of per-sample ``shape``: defaults, then ``user``'s entries.

    A user spec of another kind starts from no defaults. The entry that fixes
    the input ("dim" for the MLP, "shape" for the U-Net) always comes from
    the data; an MLP on images sees them flattened (dim = C * H * W).
    """
    shape = tuple(int(s) for s in shape)
    base = default_network(shape)
    user = dict(user or {})
    if user.get("kind", base["kind"]) != base["kind"]:
        base = {"kind": user["kind"]}
    spec = {**base, **user}
    spec.pop("dim", None)
    spec.pop("shape", None)
    if spec["kind"] == "unet":
        spec["shape"] = list(shape)
    else:
        spec["dim"] = int(np.prod(shape))
    return spec
