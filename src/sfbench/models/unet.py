"""A compact time-conditioned U-Net for images (the DDPM architecture, scaled down).

Ho et al. (2020, appendix B) after PixelCNN++: residual blocks of
GroupNorm -> SiLU -> 3x3 conv, the time embedding added inside every block,
``num_res_blocks`` blocks per resolution, a stride-2 conv down and a
nearest-neighbour upsample + conv up, skip connections concatenated on the
way up, optional single-head self-attention at the lowest resolution, and a
zero-initialised output conv (the network starts at f = 0).

The network knows no diffusion maths: it maps (x, t) to a tensor shaped like x.
It takes images ``[B, C, H, W]`` or the same images flattened, ``[B, C*H*W]``
(what the samplers hand a model whose ``dim`` they read), and answers in
the layout it was given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfbench.models.mlp import SinusoidalEmbedding


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResBlock(nn.Module):
    """h = x W_skip + conv(SiLU(GN(conv(SiLU(GN(x))) + W_t emb)))."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out, groups), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head dot-product self-attention over the H*W positions, residual, zero-init."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c), dim=-1)  # [B, HW, HW]
        out = (attn @ v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """x [B, C, H, W] (or flattened), t [B] -> tensor shaped like x.

    Args:
        shape: (C, H, W) of one sample.
        base_channels: channels at full resolution; level i has
            ``base_channels * channel_mult[i]``.
        channel_mult: one entry per resolution; H and W halve between levels,
            so they must be divisible by 2^(len(channel_mult) - 1).
        num_res_blocks: residual blocks per level on the way down (one more up).
        attention: self-attention in the middle block (lowest resolution).
        time_embed_dim: width of the time embedding (default 4 * base_channels).
        time_embed_scale: t's factor before the sinusoidal features (see
            :class:`~sfbench.models.mlp.SinusoidalEmbedding`); 1000 is what
            model files that do not record it were trained with.
        groups: GroupNorm groups (reduced to a divisor of each channel count).
        dropout: dropout inside the residual blocks.
    """

    def __init__(
        self,
        shape: Sequence[int] = (1, 8, 8),
        base_channels: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        num_res_blocks: int = 1,
        attention: bool = False,
        time_embed_dim: int | None = None,
        time_embed_scale: float = 1000.0,
        groups: int = 8,
        dropout: float = 0.0,
    ):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"UNet needs a sample shape (C, H, W), got {list(shape)}")
        if base_channels < 1 or num_res_blocks < 1 or not channel_mult or min(channel_mult) < 1:
            raise ValueError(
                "base_channels, num_res_blocks and channel_mult entries must be positive, got "
                f"{base_channels}, {num_res_blocks}, {list(channel_mult)}"
            )
        factor = 2 ** (len(channel_mult) - 1)
        if shape[1] % factor or shape[2] % factor:
            raise ValueError(
                f"image size {shape[1]}x{shape[2]} is not divisible by {factor}, which "
                f"{len(channel_mult)} resolutions (channel_mult {list(channel_mult)}) need"
            )
        self.shape, self.dim = shape, math.prod(shape)
        self.sample_shape = shape  # what NetworkModel declares
        if not time_embed_scale > 0:
            raise ValueError(f"time_embed_scale must be positive, got {time_embed_scale}")
        emb_dim = time_embed_dim or 4 * base_channels
        self.time_embed = nn.Sequential(
            SinusoidalEmbedding(base_channels + base_channels % 2, scale=float(time_embed_scale)),
            nn.Linear(base_channels + base_channels % 2, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )
        chans = [base_channels * m for m in channel_mult]
        self.input = nn.Conv2d(shape[0], chans[0], 3, padding=1)

        self.down = nn.ModuleList()
        skips, c = [chans[0]], chans[0]
        for level, c_level in enumerate(chans):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(c, c_level, emb_dim, groups, dropout))
                c = c_level
                skips.append(c)
            if level < len(chans) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)

        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim, groups, dropout)])
        if attention:
            self.mid.append(SelfAttention(c, groups))
        self.mid.append(ResBlock(c, c, emb_dim, groups, dropout))

        self.up = nn.ModuleList()
        for level in reversed(range(len(chans))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), chans[level], emb_dim, groups, dropout))
                c = chans[level]
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                             nn.Conv2d(c, c, 3, padding=1)))
        self.out_norm = _norm(c, groups)
        self.output = nn.Conv2d(c, shape[0], 3, padding=1)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        flat = x.dim() == 2 and x.shape[1] == self.dim
        if flat:
            x = x.reshape(x.shape[0], *self.shape)
        elif tuple(x.shape[1:]) != self.shape:
            raise ValueError(
                f"UNet expects x of shape [batch, {', '.join(map(str, self.shape))}] "
                f"or [batch, {self.dim}], got {list(x.shape)}"
            )
        t = t.expand(x.shape[0]) if t.dim() == 0 else t
        emb = self.time_embed(t)
        h = self.input(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = layer(h)
        out = self.output(F.silu(self.out_norm(h)))
        return out.reshape(x.shape[0], self.dim) if flat else out
