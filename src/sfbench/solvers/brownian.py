r"""Per-sample Brownian paths on [0, 1] that any time grid samples consistently.

Why: a stochastic solver with N steps and one with 2N steps should see the
*same* Brownian path, refined, so that the step count changes only the
discretisation error and not the noise (and sample i must not depend on the
batch it is drawn in). Drawing a fresh normal per step does neither.

Construction (Lévy's midpoint construction, a "virtual Brownian tree"):
for each sample i,

.. math::
    W(0) = 0, \quad W(1) = z_0, \qquad
    W\!\left(\tfrac{a + b}{2}\right) = \tfrac{W(a) + W(b)}{2}
        + \tfrac{1}{2}\sqrt{b - a}\; z_{node},

for every dyadic interval [a, b] = [k 2^{-l}, (k + 1) 2^{-l}] with l < ``depth``
(node id 2^l + k). Given W(a) and W(b) the midpoint is the Brownian bridge's
law, so the values at all dyadic points of level <= depth are exactly a
Brownian motion's. Below that resolution W is linear between dyadic points
(the Schauder series truncated at level ``depth``). An increment W(s) - W(t)
over [t, s] therefore has variance exactly s - t when t and s are dyadic of
level <= depth, and otherwise at most 2^{-depth} / 2 less (the dropped
bridge fluctuations, at most 2^{-depth} / 4 at each end): with depth 24 (the
default of :class:`~sfbench.solvers.NoiseSource`), a relative deficit below
3e-8 / (s - t), i.e. < 0.3 % for steps longer than 1e-5.

Every z is a deterministic function of (key, sample index, node): the
normals of node n for samples [bR, (b + 1) R) are the first draws of numpy's
Philox counter-based generator keyed by (key, n, b), with R =
:func:`rows_per_block` depending on the sample size only. So W_i(t) is the
same number whatever else was queried before, in whatever order, and
whatever batch sample i is drawn in.

Cost: evaluating W(t) walks down the tree from the deepest interval of the
previous query that contains t (the last walk is cached), so a solve of N
steps on a non-dyadic grid draws about N (depth - log2 N) normals per
coordinate, on the CPU (numpy's ziggurat in float32, ~10 ns each; the path
is summed in float64): at depth 24 and 500 steps, 15 normals per step and
coordinate, 3-6 ms per step for 10^4 two-dimensional samples on a shared CPU
core, i.e. several times an oracle evaluation (and one Philox key per block
of R samples). The cache holds depth + 1 values per sample and coordinate
(150 MB for a batch of 256 images of 3 x 32 x 32).
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: splitmix64's increment
#: Normals per block of samples (a block is the unit one Philox key covers).
BLOCK_NORMALS = 2048


def mix64(z: int) -> int:
    """splitmix64's finaliser (Stafford's mix 13): a bijection of 64-bit integers."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def hash_words(*words: int) -> int:
    """One 64-bit key from a tuple of non-negative integers (each folded 64 bits at a time)."""
    h = 0
    for word in words:
        while True:
            h = mix64((h + _GOLDEN * ((word & MASK64) + 1)) & MASK64)
            word >>= 64
            if not word:
                break
    return h


def rows_per_block(size: int) -> int:
    """Samples per Philox key: about :data:`BLOCK_NORMALS` normals, at least one sample."""
    return max(1, BLOCK_NORMALS // size)


class KeyedNormals:
    """Standard normals z[node, i] for samples i, a function of (key, node, i, size) only.

    Samples are drawn in fixed blocks of :func:`rows_per_block` rows; block b
    of node n holds the first draws of numpy's Philox generator keyed by
    (key, hash(n, b)). One generator is re-keyed for every block, which costs
    a state assignment instead of building a new generator.
    """

    def __init__(self, key: int, size: int):
        self.key, self.size, self.rows = key, size, rows_per_block(size)
        self._bits = np.random.Philox(key=[key, 0])
        self._gen = np.random.Generator(self._bits)

    def _rekey(self, word: int) -> None:
        self._bits.state = {
            "bit_generator": "Philox",
            "state": {
                "counter": np.zeros(4, dtype=np.uint64),
                "key": np.array([self.key, word], dtype=np.uint64),
            },
            "buffer": np.zeros(4, dtype=np.uint64),
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }

    def __call__(self, node: int, first: int, n: int) -> np.ndarray:
        """Normals of ``node`` for samples ``first .. first + n - 1``, float64 [n, size]."""
        rows = self.rows
        out = np.empty((n, self.size))
        for block in range(first // rows, (first + n - 1) // rows + 1):
            self._rekey(hash_words(node, block))
            # float32 draws (~25 % faster); the path itself is summed in float64.
            z = self._gen.standard_normal((rows, self.size), dtype=np.float32)
            lo, hi = max(first, block * rows), min(first + n, (block + 1) * rows)
            out[lo - first : hi - first] = z[lo - block * rows : hi - block * rows]
        return out


class BrownianTree:
    """Brownian paths W_i on [0, 1], one per key, with values of ``size`` components.

    Args:
        key: 64-bit key of the family of paths (from the seed and stream).
        first: global index of the first sample.
        n: number of samples.
        size: number of components of one sample's W.
        depth: levels of the dyadic construction (see the module doc).
    """

    def __init__(self, key: int, first: int, n: int, size: int, depth: int):
        self.first, self.n, self.depth = first, n, depth
        self._normals_of = KeyedNormals(key, size)
        w1 = self._normals(0)  # node 0: W(1) ~ N(0, 1)
        # The last walk: stack[l] = (a, b, W(a), W(b)) of the level-l interval holding the
        # last queried time. Later queries resume from the deepest interval that holds them.
        self._stack = [(0.0, 1.0, np.zeros_like(w1), w1)]

    def _normals(self, node: int) -> np.ndarray:
        return self._normals_of(node, self.first, self.n)

    def __call__(self, t: float) -> np.ndarray:
        """W(t) for every sample, float64 [n, size]."""
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"Brownian paths are defined on [0, 1], got t = {t}")
        stack = self._stack
        while not stack[-1][0] <= t <= stack[-1][1]:
            stack.pop()  # the root [0, 1] always holds t
        while True:
            a, b, wa, wb = stack[-1]
            if t == a:
                return wa
            if t == b:
                return wb
            level = len(stack) - 1
            if level == self.depth:
                return wa + (t - a) / (b - a) * (wb - wa)
            mid = 0.5 * (a + b)
            node = (1 << level) + round(a * (1 << level))
            w_mid = self._normals(node)
            w_mid *= 0.5 * math.sqrt(b - a)
            w_mid += 0.5 * (wa + wb)
            stack.append((a, mid, wa, w_mid) if t < mid else (mid, b, w_mid, wb))
