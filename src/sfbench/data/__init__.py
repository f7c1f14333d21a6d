"""Dataset registry.

A dataset draws ``n`` points for a (seed, split) pair; the train and test
splits are independent draws (different numpy streams from the same seed).
Gaussian-mixture datasets carry their :class:`GaussianMixture`, which gives
the exact log-density and makes the analytic oracle available.
A user-defined mixture is ``gmm:<path to a JSON file with weights, means, covs>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfbench.data import gmm as _gmm
from sfbench.data import toy2d
from sfbench.data.gmm import GaussianMixture

SPLITS = {"train": 0, "test": 1}


@dataclass(frozen=True)
class Dataset:
    name: str
    dim: int
    sampler: Callable[[int, np.random.Generator], np.ndarray]
    mixture: GaussianMixture | None = None
    description: str = ""

    def sample(self, n: int, seed: int, split: str = "train") -> np.ndarray:
        """n points of ``split`` (float32), deterministic in (seed, split)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if n < 1:
            raise ValueError(f"number of points must be positive, got {n}")
        rng = np.random.default_rng([seed, SPLITS[split]])
        return self.sampler(n, rng).astype(np.float32)


def _mixture_dataset(name: str, mixture: GaussianMixture, description: str) -> Dataset:
    return Dataset(name, mixture.dim, mixture.sample, mixture, description)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        _mixture_dataset("8gaussians", _gmm.eight_gaussians(), _gmm.eight_gaussians.__doc__),
        _mixture_dataset("25gaussians", _gmm.twenty_five_gaussians(), "5 x 5 grid mixture"),
        _mixture_dataset("gmm_aniso", _gmm.anisotropic_gaussians(), "3 correlated components"),
        Dataset("moons", 2, toy2d.moons, description=toy2d.moons.__doc__),
        Dataset("checkerboard", 2, toy2d.checkerboard, description=toy2d.checkerboard.__doc__),
        Dataset("2spirals", 2, toy2d.two_spirals, description=toy2d.two_spirals.__doc__),
        Dataset("swissroll", 2, toy2d.swissroll, description=toy2d.swissroll.__doc__),
        Dataset("circles", 2, toy2d.circles, description=toy2d.circles.__doc__),
    )
}


def get_dataset(name: str) -> Dataset:
    """The dataset called ``name`` (or ``gmm:<spec.json>``); the error lists the valid names."""
    if name.startswith("gmm:"):
        path = Path(name[4:])
        if not path.is_file():
            raise FileNotFoundError(f"gmm spec file not found: {path}")
        try:
            spec = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"gmm spec {path} is not valid JSON: {err}") from None
        return _mixture_dataset(name, _gmm.from_spec(spec), f"mixture from {path}")
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(sorted(DATASETS))} "
            "or gmm:<spec.json>"
        ) from None


__all__ = ["DATASETS", "Dataset", "GaussianMixture", "get_dataset"]
