r"""Image datasets with fixed train/test splits: 8x8 digits, Fashion-MNIST, CIFAR-10.

Pixels are discrete, v in {0, ..., L - 1} with L = ``levels`` (17 for the
digits, whose values run 0..16; 256 for the others), and are scaled to the
model's range [-1, 1] by

.. math:: x = 2 v / (L - 1) - 1,

so the L levels sit on a grid of spacing h = 2 / (L - 1) with -1 and 1 on
it. :func:`to_model_scale` and :func:`to_levels` are the two directions;
:mod:`sfbench.eval.bits` builds the dequantization and bits/dim on the same
grid.

Where the files come from (no network at run time):

- ``digits``: scikit-learn's copy of the UCI 8x8 digits (1797 images, shipped
  inside scikit-learn), split once, stratified by class: with the seed
  :data:`DIGITS_SPLIT_SEED`, :data:`DIGITS_TEST_PER_CLASS` = 30 random images
  of each digit form the test split (300), the other 1497 the train split.
- ``fashion_mnist``: the four IDX files (gzipped or not), looked up in the
  ``data_dir`` given, else ``$SFBENCH_DATA_DIR`` (and its ``fashion_mnist/``
  or ``fashion-mnist/`` sub-directory), else Debian's
  ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
- ``cifar10``: the python pickle batches (``data_batch_1..5``, ``test_batch``)
  in ``data_dir`` or ``$SFBENCH_DATA_DIR``, directly or in a
  ``cifar-10-batches-py/`` or ``cifar10/`` sub-directory.

Missing files raise :class:`~sfbench.errors.DataFileError` saying where the
reader looked and how to obtain them.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from sfbench.data.readers import read_cifar_batch, read_idx
from sfbench.errors import DataFileError

DATA_DIR_ENV = "SFBENCH_DATA_DIR"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

#: The digits split: seed, and test images per class (10 classes -> 300 test, 1497 train).
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_PER_CLASS = 30
DIGITS_N_TRAIN = 1797 - 10 * DIGITS_TEST_PER_CLASS

SPLIT_NAMES = ("train", "test")


def to_model_scale(v: np.ndarray, levels: int) -> np.ndarray:
    """Discrete values v in {0..levels-1} -> x = 2 v / (levels - 1) - 1 in [-1, 1] (float32)."""
    return (2.0 * np.asarray(v, dtype=np.float64) / (levels - 1) - 1.0).astype(np.float32)


def to_levels(x, levels: int) -> np.ndarray:
    """Inverse of :func:`to_model_scale`: the nearest level of each x, clipped to 0..levels-1."""
    v = np.rint((np.asarray(x, dtype=np.float64) + 1.0) * (levels - 1) / 2.0)
    return np.clip(v, 0, levels - 1).astype(np.int64)


def _check_split(split: str) -> None:
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLIT_NAMES)}")


# ------------------------------------------------------------------ digits


@functools.lru_cache(maxsize=1)
def _digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    values = np.rint(bunch.images).astype(np.uint8)[:, None]  # 0..16, stored as float64
    labels = bunch.target.astype(np.int64)
    if values.shape != (1797, 1, 8, 8) or values.max() > 16:
        raise DataFileError(f"unexpected scikit-learn digits: shape {values.shape}")
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:DIGITS_TEST_PER_CLASS] for c in range(10)]
    )
    train = np.setdiff1d(np.arange(labels.size), test)
    # A fixed shuffle of each split, so that any prefix holds every class.
    train, test = rng.permutation(train), rng.permutation(test)
    return {"train": (values[train], labels[train]), "test": (values[test], labels[test])}


def digits_split(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Values [N, 1, 8, 8] in 0..16 (uint8) and labels [N] of the fixed digits split.

    ``data_dir`` is ignored: the digits ship with scikit-learn.
    """
    _check_split(split)
    return _digits_splits()[split]


# ------------------------------------------------------------------ file lookup


def _roots(data_dir: str | None, subdirs: tuple[str, ...], extra: tuple[Path, ...] = ()):
    """Directories to search, in order: data_dir (or $SFBENCH_DATA_DIR) and their subdirs."""
    base = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    roots: list[Path] = []
    if base:
        roots += [Path(base)] + [Path(base) / s for s in subdirs]
    if data_dir is None:
        roots += list(extra)
    return roots


def _find(roots: list[Path], names: tuple[str, ...]) -> Path | None:
    """The first root that holds every name (or every name + '.gz')."""
    for root in roots:
        if all((root / n).is_file() or (root / f"{n}.gz").is_file() for n in names):
            return root
    return None


def _file(root: Path, name: str) -> Path:
    return root / name if (root / name).is_file() else root / f"{name}.gz"


def _where(roots: list[Path]) -> str:
    if not roots:
        return f"nowhere (no data directory given and ${DATA_DIR_ENV} is not set)"
    return ", ".join(str(r) for r in roots)


# ------------------------------------------------------------------ Fashion-MNIST

_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def fashion_mnist_dir(data_dir: str | None = None) -> Path:
    """The directory holding the four Fashion-MNIST IDX files, or an error saying how to get
    them."""
    roots = _roots(data_dir, ("fashion_mnist", "fashion-mnist"), (DEBIAN_FASHION_MNIST,))
    names = _FASHION_FILES["train"] + _FASHION_FILES["test"]
    found = _find(roots, names)
    if found is None:
        raise DataFileError(
            "fashion_mnist: the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) were not found; looked in "
            f"{_where(roots)}. Install Debian's package (apt-get install dataset-fashion-mnist, "
            f"which puts them in {DEBIAN_FASHION_MNIST}) or download them from "
            "https://github.com/zalandoresearch/fashion-mnist (data/fashion) into "
            f"${DATA_DIR_ENV}/fashion_mnist or the directory given as data_dir / --data-dir."
        )
    return found


@functools.lru_cache(maxsize=4)
def _fashion_cached(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    img_name, lab_name = _FASHION_FILES[split]
    images = read_idx(_file(Path(root), img_name))
    labels = read_idx(_file(Path(root), lab_name)).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFileError(
            f"{_file(Path(root), img_name)}: expected uint8 images [N, 28, 28], "
            f"got {images.dtype} {list(images.shape)}"
        )
    if labels.shape != images.shape[:1]:
        raise DataFileError(f"{root}: {labels.shape[0]} labels for {images.shape[0]} images")
    return images[:, None], labels


def fashion_mnist_split(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Values [N, 1, 28, 28] (uint8, 0..255) and labels of Fashion-MNIST's train or test split."""
    _check_split(split)
    return _fashion_cached(str(fashion_mnist_dir(data_dir)), split)


# ------------------------------------------------------------------ CIFAR-10

_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def cifar10_dir(data_dir: str | None = None) -> Path:
    """The directory holding CIFAR-10's python batches, or an error saying how to get them."""
    roots = _roots(
        data_dir, ("cifar-10-batches-py", "cifar10", os.path.join("cifar10", "cifar-10-batches-py"))
    )
    found = _find(roots, _CIFAR_FILES["train"] + _CIFAR_FILES["test"])
    if found is None:
        raise DataFileError(
            "cifar10: the python batches (data_batch_1 .. data_batch_5, test_batch) were not "
            f"found; looked in {_where(roots)}. Download "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it into "
            f"${DATA_DIR_ENV} (it creates cifar-10-batches-py/) or pass that directory as "
            "data_dir / --data-dir."
        )
    return found


@functools.lru_cache(maxsize=2)
def _cifar_cached(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_cifar_batch(_file(Path(root), name)) for name in _CIFAR_FILES[split]]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cifar10_split(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Values [N, 3, 32, 32] (uint8, 0..255) and labels of CIFAR-10's train or test split."""
    _check_split(split)
    return _cifar_cached(str(cifar10_dir(data_dir)), split)
