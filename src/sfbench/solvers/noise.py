r"""Reproducible Gaussian noise for samplers, keyed by sample index.

Paired comparisons need sample i to see the same randomness under every
solver, step count and batch size (as EDM's ``StackedRandomGenerator``
does), so everything sample i draws depends on (seed, i) only:

- its starting noise (:meth:`NoiseSource.initial`) comes from a numpy
  generator seeded by SeedSequence(seed, spawn_key=(0, i));
- its step noise (:meth:`NoiseSource.step`) is the increment of its own
  Brownian path W_i over the step, W_i(s) - W_i(t) (:mod:`.brownian`), so a
  finer grid refines the same path instead of drawing new noise. Solvers
  that need more than one independent noise per step (a corrector) ask for
  another ``stream``: an independent Brownian path per (seed, stream, i).

Draws are made in float64 on the CPU, so they do not depend on torch's
generator, the device or the working dtype.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch
from torch import Tensor

from sfbench.solvers.brownian import BrownianTree, hash_words

#: Levels of the dyadic Brownian construction: exact at multiples of 2^-24 (6e-8).
#: 20 would be 30 % cheaper, but 1000-step log-SNR grids on the cfm path have
#: steps of 1.4e-6, whose noise variance it would cut by a third.
BROWNIAN_DEPTH = 24

# Tags that keep the starting-noise and Brownian streams apart.
_INITIAL_STREAM = 0
_BROWNIAN_STREAM = 1


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
        depth: levels of the Brownian construction (:mod:`.brownian`).
    """

    def __init__(self, seed: int, n_samples: int, start: int = 0, depth: int = BROWNIAN_DEPTH):
        self.seed = _non_negative_int("seed", seed)
        self.n_samples = _non_negative_int("n_samples", n_samples)
        self.start = _non_negative_int("start", start)
        self.depth = _non_negative_int("depth", depth)
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        if not 1 <= self.depth <= 50:
            raise ValueError(f"depth must lie in [1, 50], got {depth}")
        self._trees: dict[tuple[int, int], BrownianTree] = {}

    def batch(self, start: int, stop: int) -> NoiseSource:
        """The source for samples ``start:stop`` of this one (indices relative to it)."""
        if not 0 <= start < stop <= self.n_samples:
            raise ValueError(f"batch {start}:{stop} is outside 0:{self.n_samples}")
        return NoiseSource(self.seed, stop - start, self.start + start, self.depth)

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

    def _tree(self, stream: int, size: int) -> BrownianTree:
        tree = self._trees.get((stream, size))
        if tree is None:
            key = hash_words(_BROWNIAN_STREAM, self.seed, stream, size)
            tree = BrownianTree(key, self.start, self.n_samples, size, self.depth)
            self._trees[(stream, size)] = tree
        return tree

    def step(self, t: float, s: float, like: Tensor, *, stream: int = 0) -> Tensor:
        r"""The Brownian increment :math:`W_i(s) - W_i(t)` of every sample, shaped like ``like``.

        Each sample i has its own Brownian motion on [0, 1] (one per
        ``stream``), a function of (seed, stream, i) only: increments over
        disjoint intervals are independent with variance s - t, and the
        increments over the steps of a finer grid sum to the coarse one.

        Args:
            t: start of the step, in [0, 1].
            s: end of the step, in [t, 1].
            like: a tensor [n_samples, ...] whose shape, dtype and device the result takes.
            stream: index of an independent family of paths (0 for the main noise).

        Raises:
            ValueError: if the interval is not inside [0, 1] or ``like`` has
                the wrong number of samples.
        """
        stream = _non_negative_int("stream", stream)
        if not 0.0 <= t <= s <= 1.0:
            raise ValueError(f"need 0 <= t <= s <= 1 for a Brownian increment, got [{t}, {s}]")
        if like.dim() < 1 or like.shape[0] != self.n_samples:
            raise ValueError(
                f"noise source covers {self.n_samples} samples, got a tensor of shape "
                f"{list(like.shape)}"
            )
        size = math.prod(like.shape[1:])
        tree = self._tree(stream, size)
        w_t = tree(float(t))  # first: t is usually the last query, so this costs nothing
        dw = tree(float(s)) - w_t
        return torch.from_numpy(dw.reshape(like.shape)).to(dtype=like.dtype, device=like.device)

    def step_normal(self, t: float, s: float, like: Tensor, *, stream: int = 0) -> Tensor:
        r"""The standardised increment :math:`(W_i(s) - W_i(t)) / \sqrt{s - t}`, a N(0, I) draw.

        For solvers whose step noise is not scaled by sqrt(step) (posterior
        and churn noise): the same Brownian path, so it stays paired across grids.

        Raises:
            ValueError: as :meth:`step`, and if s = t.
        """
        if not s > t:
            raise ValueError(f"a standardised increment needs s > t, got [{t}, {s}]")
        return self.step(t, s, like, stream=stream) / math.sqrt(s - t)

    def describe(self) -> dict:
        """How the noise is drawn, for result files."""
        return {
            "seed": self.seed,
            "initial": "per sample, numpy SeedSequence(seed, spawn_key=(0, i))",
            "step": (
                "per-sample Brownian path on [0, 1]: Levy midpoint construction to depth "
                f"{self.depth}, normals from a splitmix64 hash of (seed, stream, i, node)"
            ),
            "brownian_depth": self.depth,
        }
