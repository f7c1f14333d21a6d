"""Dataset registry.

A dataset draws ``n`` points for a (seed, split) pair. Two kinds:

- *sampled* datasets (2-D toys, Gaussian mixtures): the train and test
  splits are independent draws (different numpy streams from the same seed).
  Gaussian-mixture datasets carry their :class:`GaussianMixture`, which gives
  the exact log-density and makes the analytic oracle available. A
  user-defined mixture is ``gmm:<path to a JSON file with weights, means, covs>``.
- *fixed-split* image datasets (``digits``, ``fashion_mnist``, ``cifar10``):
  :meth:`Dataset.load_split` returns the whole split; :meth:`Dataset.sample`
  returns it whole (in its fixed order) when ``n`` is at least its size and a
  seeded subset of ``n`` images otherwise. Their pixels are discrete with
  ``levels`` values, scaled to [-1, 1] (:mod:`sfbench.data.images`).

``shape`` is the shape of one sample ((2,) for 2-D data, (C, H, W) for
images); ``dim`` is its number of elements. ``kind`` is ``"image"`` for the
discrete-pixel datasets and ``"vector"`` otherwise (the metric registry's
kinds, :mod:`sfbench.eval.metrics`).

Every image dataset declares ``fid_extractor``, the pinned feature extractor
its FID and KID use (:data:`sfbench.eval.extractors.EXTRACTORS`): an image
dataset is not comparable to another run's numbers without one, so
:func:`sfbench.eval.extractors.extractor_name` refuses an image dataset that
lacks it instead of falling back to raw pixels. Vector datasets have
``fid_extractor = None`` (their Frechet distance is on the coordinates).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfbench import plugins
from sfbench.data import gmm as _gmm
from sfbench.data import images, toy2d
from sfbench.data.gmm import GaussianMixture

SPLITS = {"train": 0, "test": 1}


#: (split, data_dir) -> (discrete values [N, *shape] as integers, labels [N]).
SplitLoader = Callable[[str, "str | None"], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Dataset:
    name: str
    shape: tuple[int, ...]
    sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None
    mixture: GaussianMixture | None = None
    description: str = ""
    levels: int | None = None  # number of discrete pixel values; None for continuous data
    split_loader: SplitLoader | None = None  # fixed-split datasets only
    data_dir: str | None = None  # where split_loader looks for files (None: its defaults)
    fid_extractor: str | None = None  # image datasets: the extractor of their FID / KID

    @property
    def kind(self) -> str:
        """``"image"`` (discrete pixel levels: FID, KID, bits/dim) or ``"vector"``."""
        return "vector" if self.levels is None else "image"

    @property
    def dim(self) -> int:
        """Number of elements of one sample (the flattened dimension)."""
        return math.prod(self.shape)

    @property
    def fixed_splits(self) -> bool:
        return self.split_loader is not None

    def with_data_dir(self, data_dir: str | None) -> Dataset:
        """This dataset reading its files from ``data_dir`` (unchanged if None)."""
        return self if data_dir is None else dataclasses.replace(self, data_dir=str(data_dir))

    def load_split(self, split: str) -> np.ndarray:
        """The whole fixed ``split`` as float32 ``[N, *shape]`` in [-1, 1]."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if self.split_loader is None:
            raise ValueError(f"{self.name} has no fixed splits; draw points with sample()")
        values, _ = self.split_loader(split, self.data_dir)
        return images.to_model_scale(values, self.levels)

    def load_labels(self, split: str) -> np.ndarray:
        """Class labels of the fixed ``split`` (int64 [N])."""
        if self.split_loader is None:
            raise ValueError(f"{self.name} has no fixed splits and no labels")
        return self.split_loader(split, self.data_dir)[1]

    def sample(self, n: int, seed: int, split: str = "train") -> np.ndarray:
        """n points of ``split`` (float32 ``[n, *shape]``), deterministic in (seed, split).

        Fixed-split datasets return the whole split (n is capped at its size,
        seed unused) or, for n below its size, n distinct images chosen by the seed.
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        if n < 1:
            raise ValueError(f"number of points must be positive, got {n}")
        rng = np.random.default_rng([seed, SPLITS[split]])
        if self.split_loader is None:
            return self.sampler(n, rng).astype(np.float32)
        full = self.load_split(split)
        if n >= full.shape[0]:
            return full
        return full[np.sort(rng.choice(full.shape[0], size=n, replace=False))]


def _mixture_dataset(name: str, mixture: GaussianMixture, description: str) -> Dataset:
    return Dataset(name, (mixture.dim,), mixture.sample, mixture, description)


_BUILTIN_DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        _mixture_dataset("8gaussians", _gmm.eight_gaussians(), _gmm.eight_gaussians.__doc__),
        _mixture_dataset("25gaussians", _gmm.twenty_five_gaussians(), "5 x 5 grid mixture"),
        _mixture_dataset("gmm_aniso", _gmm.anisotropic_gaussians(), "3 correlated components"),
        Dataset("moons", (2,), toy2d.moons, description=toy2d.moons.__doc__),
        Dataset("checkerboard", (2,), toy2d.checkerboard, description=toy2d.checkerboard.__doc__),
        Dataset("2spirals", (2,), toy2d.two_spirals, description=toy2d.two_spirals.__doc__),
        Dataset("swissroll", (2,), toy2d.swissroll, description=toy2d.swissroll.__doc__),
        Dataset("circles", (2,), toy2d.circles, description=toy2d.circles.__doc__),
        Dataset(
            "digits",
            (1, 8, 8),
            levels=17,
            split_loader=images.digits_split,
            fid_extractor="digits_classifier",
            description="scikit-learn's 8x8 digits, values 0..16, fixed split "
            f"{images.DIGITS_N_TRAIN}/{1797 - images.DIGITS_N_TRAIN}, stratified "
            f"(seed {images.DIGITS_SPLIT_SEED})",
        ),
        Dataset(
            "fashion_mnist",
            (1, 28, 28),
            levels=256,
            split_loader=images.fashion_mnist_split,
            fid_extractor="inception_fid",
            description="Fashion-MNIST 28x28 grey, 60000/10000 (IDX files)",
        ),
        Dataset(
            "cifar10",
            (3, 32, 32),
            levels=256,
            split_loader=images.cifar10_split,
            fid_extractor="inception_fid",
            description="CIFAR-10 32x32 RGB, 50000/10000 (python pickle batches)",
        ),
    )
}

#: The built-in datasets, then the ``sfbench.datasets`` plug-ins (:mod:`sfbench.plugins`),
#: loaded when the registry is first read.
DATASETS: plugins.Registry[Dataset] = plugins.Registry(
    plugins.GROUPS["datasets"], _BUILTIN_DATASETS, plugins.instance_of(Dataset)
)


def get_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """The dataset called ``name`` (or ``gmm:<spec.json>``); the error lists the valid names.

    ``data_dir`` is where a file-backed image dataset looks for its files
    (default: ``$SFBENCH_DATA_DIR``, then system locations).
    """
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
        return DATASETS[name].with_data_dir(data_dir)
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(sorted(DATASETS))} "
            "or gmm:<spec.json>"
        ) from None


__all__ = ["DATASETS", "Dataset", "GaussianMixture", "get_dataset"]
