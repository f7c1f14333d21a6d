"""Two-dimensional toy distributions with fixed, documented parameters.

Each sampler draws n points from a numpy Generator, so a (seed, split) pair
fixes the data exactly. The shapes follow the toy sets popularised by FFJORD
and scikit-learn; the constants are ours and written next to each sampler.
All sets lie roughly within [-4, 4]^2.
"""

from __future__ import annotations

import numpy as np


def moons(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two interleaved half circles of radius 1, Gaussian noise std 0.1,
    centred and scaled by 2 (so x in about [-3, 3], y in about [-1.5, 1.5])."""
    upper = rng.random(n) < 0.5
    theta = np.pi * rng.random(n)
    x = np.where(upper, np.cos(theta), 1.0 - np.cos(theta))
    y = np.where(upper, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([x, y], 1) + 0.1 * rng.standard_normal((n, 2))
    return 2.0 * (pts - np.array([0.5, 0.25]))


def checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on the 8 dark cells of a 4 x 4 board of cells of side 2 on [-4, 4]^2."""
    x1 = 4.0 * rng.random(n) - 2.0
    x2 = rng.random(n) - 2.0 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return 2.0 * np.stack([x1, x2], 1)


def two_spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two interleaved Archimedean spirals of 1.5 turns, scaled by 1/3,
    uniform jitter 0.5/3 and Gaussian noise std 0.1."""
    r = np.sqrt(rng.random(n)) * 3 * np.pi
    pts = np.stack([-np.cos(r) * r, np.sin(r) * r], 1) + 0.5 * rng.random((n, 2))
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
    return sign * pts / 3.0 + 0.1 * rng.standard_normal((n, 2))


def swissroll(n: int, rng: np.random.Generator) -> np.ndarray:
    """The 2-D Swiss roll: angle u ~ U[1.5 pi, 4.5 pi], point u (cos u, sin u),
    Gaussian noise std 1, all divided by 5."""
    u = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    pts = np.stack([u * np.cos(u), u * np.sin(u)], 1) + rng.standard_normal((n, 2))
    return pts / 5.0


def circles(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two concentric circles of radius 3 and 1.5 (equal mass), noise std 0.24."""
    radius = np.where(rng.random(n) < 0.5, 3.0, 1.5)
    theta = 2 * np.pi * rng.random(n)
    pts = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1)
    return pts + 0.24 * rng.standard_normal((n, 2))
