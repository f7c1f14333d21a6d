r"""FID and KID protocol on the features of a pinned extractor.

The extractors themselves, and which one a dataset uses (its declared
``fid_extractor``), are in :mod:`sfbench.eval.extractors`.

The distance itself has one implementation: features are computed here,
then handed to torchmetrics through the identity extractor of
:func:`sfbench.eval.distances.frechet_distance_coords` (FID) and of
torchmetrics' ``KernelInceptionDistance`` (KID), both in float64:

.. math::
    \mathrm{FID} = |\mu_r - \mu_g|^2 + \mathrm{tr}\big(\Sigma_r + \Sigma_g
                   - 2 (\Sigma_r \Sigma_g)^{1/2}\big),

    \mathrm{KID} = \mathrm{MMD}^2_u \text{ with } k(a, b) = (a^\top b / F + 1)^3,

KID averaged over ``kid_subsets`` random subsets of ``kid_subset_size``
(Binkowski et al. 2018), reported as mean and std.

Protocol, written next to every number (:func:`fid_kid` returns it):
generated images are reshaped to the dataset's sample shape, checked finite,
clipped to [-1, 1] and rounded to the dataset's pixel levels -- the form
real images have -- before their features are taken; the reference set is
the dataset's ``split`` (default ``test``), whole or its first
``n_reference`` images, and its features are cached in ``cache_dir`` under a
name keyed by extractor hash, dataset, split and count.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from sfbench.data import Dataset
from sfbench.data.images import to_levels, to_model_scale
from sfbench.errors import DataFileError, SfbenchError
from sfbench.eval.distances import CoordinateFeatures, frechet_distance_coords
from sfbench.eval.extractors import Extractor, extractor_name, get_extractor
from sfbench.io import save_npz

__all__ = [
    "fid_kid", "gaussian_baseline_samples", "image_reference", "kid", "prepare_images",
    "reference_features",
    # the extractor choice, re-exported: commands take it from here with fid_kid
    "extractor_name", "get_extractor",
]


def prepare_images(x, dataset: Dataset) -> np.ndarray:
    """Samples as the dataset's real images look: [N, *shape], clipped, rounded to its levels.

    Flat samples ``[N, dim]`` (what the samplers write) are reshaped. Vector
    datasets (no levels) are only reshaped and checked.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or math.prod(x.shape[1:]) != dataset.dim:
        raise DataFileError(
            f"samples of shape {list(x.shape)} do not fit {dataset.name} "
            f"(one sample is {list(dataset.shape)}, {dataset.dim} values)"
        )
    x = x.reshape(x.shape[0], *dataset.shape)
    bad = int((~np.isfinite(x)).reshape(x.shape[0], -1).any(1).sum())
    if bad:
        raise DataFileError(f"{bad} of {x.shape[0]} samples hold NaN or Inf values")
    if dataset.levels is None:
        return x
    return to_model_scale(to_levels(np.clip(x, -1.0, 1.0), dataset.levels), dataset.levels)


def reference_features(
    extractor: Extractor,
    dataset: Dataset,
    split: str = "test",
    n_reference: int | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 100,
    device: str = "cpu",
    *,
    cache_file: str | Path | None = None,
    write_cache: bool = True,
) -> tuple[np.ndarray, dict]:
    """Features of the reference images (the first ``n_reference`` of ``split``), cached.

    The cache file name holds dataset, split, count, extractor name and the
    first 16 hex digits of its hash; a file whose recorded key differs is
    recomputed, never trusted. ``cache_file`` names the file itself instead
    (the pipeline's fixed path); with ``write_cache=False`` a missing or
    stale file is recomputed in memory and left as it is (a job must not
    rewrite another job's output).
    """
    real = dataset.load_split(split) if dataset.fixed_splits else None
    if real is None:
        raise SfbenchError(f"{dataset.name} has no fixed {split} split to take FID statistics of")
    n = real.shape[0] if n_reference is None else min(n_reference, real.shape[0])
    key = f"{dataset.name}-{split}-n{n}-{extractor.name}-{(extractor.sha256 or 'none')[:16]}"
    info = {"reference_split": split, "n_reference": n, "reference_key": key}
    path = Path(cache_file) if cache_file is not None else (
        Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    )
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key and z["features"].shape == (n, extractor.num_features):
                    return z["features"], {**info, "reference_cache": str(path), "cached": True}
        except Exception:  # a corrupt cache file is recomputed below
            pass
    feats = extractor.features(real[:n], batch_size, device)
    if path is not None and write_cache:
        save_npz(path, features=feats, key=np.array(key))
    else:
        path = None
    return feats, {**info, "reference_cache": None if path is None else str(path), "cached": False}


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID mean and std over subsets (torchmetrics, cubic polynomial kernel), on features."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, real.shape[0], fake.shape[0])
    with warnings.catch_warnings():  # "will save all extracted features": intended here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=CoordinateFeatures(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(torch.as_tensor(real, dtype=torch.float64), real=True)
    metric.update(torch.as_tensor(fake, dtype=torch.float64), real=False)
    state = torch.get_rng_state()
    torch.manual_seed(seed)  # torchmetrics draws its subsets from the global generator
    try:
        mean, std = metric.compute()
    finally:
        torch.set_rng_state(state)
    return float(mean), float(std)


def fid_kid(
    samples,
    dataset: Dataset,
    extractor: Extractor,
    *,
    split: str = "test",
    n_reference: int | None = None,
    cache_dir: str | Path | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    kid_seed: int = 0,
    batch_size: int = 100,
    device: str = "cpu",
    cache_file: str | Path | None = None,
    write_cache: bool = True,
) -> dict:
    """FID and KID of ``samples`` against the dataset's ``split``, with the full protocol.

    ``batch_size`` images go through the extractor at a time on ``device``
    (it bounds the memory of the 299 x 299 Inception inputs; Inception
    features took ~0.1 s per image on the 2-core CPU, so 10 000 images want a GPU).
    """
    fake = prepare_images(samples, dataset)
    real_feats, ref_info = reference_features(
        extractor, dataset, split, n_reference, cache_dir, batch_size, device,
        cache_file=cache_file, write_cache=write_cache,
    )
    fake_feats = extractor.features(fake, batch_size, device)
    kid_mean, kid_std = kid(real_feats, fake_feats, kid_subsets, kid_subset_size, kid_seed)
    return {
        "fid": frechet_distance_coords(real_feats, fake_feats),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "protocol": {
            "dataset": dataset.name,
            "n_samples": int(fake.shape[0]),
            **ref_info,
            **extractor.describe(),
            "sample_preprocessing": "reshape, clip to [-1, 1], round to the dataset's "
            f"{dataset.levels} levels" if dataset.levels else "reshape",
            "kid_subsets": kid_subsets,
            "kid_subset_size": min(kid_subset_size, real_feats.shape[0], fake_feats.shape[0]),
            "kid_kernel": "(a.b / F + 1)^3",
            "kid_seed": kid_seed,
            "feature_device": device,
            "fid_implementation": "torchmetrics FrechetInceptionDistance on features, float64",
        },
    }


def gaussian_baseline_samples(train_x, n: int, seed: int) -> np.ndarray:
    r"""n samples of the Gaussian fitted to the training images: N(mean, covariance) of the pixels.

    The FID baseline of the digits. It matches the pixels' first two moments
    exactly -- every pixel's mean and every pair's covariance -- and nothing
    more, so a model that beats it has learned structure beyond second-order
    pixel statistics (strokes, shapes); a model that does not has learned
    less than a fitted Gaussian. Samples have the shape of ``train_x``'s
    samples and go through the same clipping and rounding as model samples.
    """
    x = np.asarray(train_x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1)
    mean, cov = flat.mean(0), np.cov(flat, rowvar=False)
    z = np.random.default_rng(seed).multivariate_normal(mean, cov, size=n, method="eigh")
    return z.reshape(n, *x.shape[1:]).astype(np.float32)


def image_reference(
    dataset: Dataset,
    extractor: Extractor,
    n_samples: int,
    seed: int,
    *,
    draws: int = 3,
    **fid_options,
) -> dict:
    r"""The two yardsticks of an image dataset's FID, at the sample count of a sweep cell.

    - ``floor``: ``draws`` random subsets of ``n_samples`` images of the
      *train* split (subset k drawn with seed ``seed + k``) against the test
      split: real images independent of the reference, so the FID a perfect
      model would get at this sample count (FID is biased upwards at finite
      n, so a floor at another n would not compare);
    - ``baseline``: ``draws`` sets of ``n_samples`` from the Gaussian fitted
      to the train split's pixels (:func:`gaussian_baseline_samples`, seeds
      ``seed + k``): what matching the first two pixel moments alone gives.

    Both go through the same preparation and extractor as model samples
    (``fid_options`` are those of :func:`fid_kid`). Returns per-draw values,
    their mean and std, and the protocol of the first computation.
    """
    train = dataset.load_split("train")
    if n_samples > train.shape[0]:
        raise SfbenchError(
            f"{dataset.name}: the FID floor needs {n_samples} train images per draw, "
            f"the split has {train.shape[0]}; lower the sample count"
        )
    out: dict = {}
    protocol = None
    for name in ("floor", "baseline"):
        rows = []
        for k in range(draws):
            if name == "floor":
                pick = np.random.default_rng(seed + k).permutation(train.shape[0])[:n_samples]
                x = train[np.sort(pick)]
            else:
                x = gaussian_baseline_samples(train, n_samples, seed + k)
            res = fid_kid(x, dataset, extractor, **fid_options)
            protocol = protocol or res["protocol"]
            rows.append({"seed": seed + k, "fid": res["fid"], "kid": res["kid_mean"]})
        out[name] = rows
        for metric in ("fid", "kid"):
            values = np.array([r[metric] for r in rows])
            out[f"{name}_{metric}"] = float(values.mean())
            out[f"{name}_{metric}_std"] = float(values.std(ddof=1)) if draws > 1 else 0.0
    out["protocol"] = protocol
    return out
