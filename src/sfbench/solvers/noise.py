r"""Reproducible Gaussian noise for samplers, keyed by sample index.

Paired comparisons need sample i to start from the same point under every
solver, step count and batch size (as EDM's ``StackedRandomGenerator``
does), so its starting noise comes from a generator seeded by
(seed, i) only. Step noise for stochastic solvers comes from one generator
per (seed, step k, first sample of the batch): one generator per step, not
one per sample, which keeps 10k-sample runs fast. It therefore depends on
how the samples are batched; a later change will make it a per-sample
Brownian path behind the same :meth:`NoiseSource.step` call.

Draws are made in float64 with numpy's SeedSequence, so they do not depend
on torch's generator, the device or the working dtype.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import Tensor

# Spawn-key tags that keep the starting-noise and step-noise streams apart.
_INITIAL_STREAM = 0
_STEP_STREAM = 1


def _rng(seed: int, *key: int) -> np.random.Generator:
    # The seed is the entropy and the key the spawn key: numpy pads the
    # entropy before appending the key, so no two (seed, key) pairs collide.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _non_negative_int(name: str, value: int) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}") from None
    if isinstance(value, bool) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return n


class NoiseSource:
    """Gaussian noise for the samples ``start, ..., start + n_samples - 1`` of a run.

    Args:
        seed: the run's seed (a non-negative integer).
        n_samples: how many samples this source covers.
        start: global index of its first sample (non-zero for a batch of a
            larger run; see :meth:`batch`).
    """

    def __init__(self, seed: int, n_samples: int, start: int = 0):
        self.seed = _non_negative_int("seed", seed)
        self.n_samples = _non_negative_int("n_samples", n_samples)
        self.start = _non_negative_int("start", start)
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be positive, got {n_samples}")

    def batch(self, start: int, stop: int) -> NoiseSource:
        """The source for samples ``start:stop`` of this one (indices relative to it)."""
        if not 0 <= start < stop <= self.n_samples:
            raise ValueError(f"batch {start}:{stop} is outside 0:{self.n_samples}")
        return NoiseSource(self.seed, stop - start, self.start + start)

    def initial(
        self,
        shape_per_sample: tuple[int, ...],
        std: float = 1.0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Tensor:
        r"""Starting points :math:`x_i = std \cdot z_i`, :math:`z_i \sim N(0, I)` from (seed, i).

        Returns:
            tensor of shape [n_samples, *shape_per_sample].
        """
        shape = tuple(shape_per_sample)
        z = np.stack(
            [
                _rng(self.seed, _INITIAL_STREAM, i).standard_normal(shape)
                for i in range(self.start, self.start + self.n_samples)
            ]
        )
        return (std * torch.from_numpy(z)).to(dtype=dtype, device=device)

    def step(self, k: int, like: Tensor) -> Tensor:
        """Standard normal noise for step ``k``, shaped like ``like`` (its dtype and device).

        Deterministic in (seed, k, start); different steps and batches get
        independent draws.
        """
        k = _non_negative_int("k", k)
        z = _rng(self.seed, _STEP_STREAM, k, self.start).standard_normal(tuple(like.shape))
        return torch.from_numpy(z).to(dtype=like.dtype, device=like.device)

    def describe(self) -> dict:
        """How the noise is drawn, for result files."""
        return {
            "seed": self.seed,
            "initial": "per sample, numpy SeedSequence(seed, spawn_key=(0, i))",
            "step": "per batch and step, numpy SeedSequence(seed, spawn_key=(1, k, first index))",
        }
