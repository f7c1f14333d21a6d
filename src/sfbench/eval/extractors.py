"""The pinned feature extractors of FID / KID, and which one a dataset uses.

| family           | extractor             | features                                     |
|------------------|-----------------------|----------------------------------------------|
| 2-D / vectors    | ``coords``            | the coordinates themselves                   |
| 8x8 digits       | ``digits_classifier`` | sfbench's own CNN, penultimate (64), scaled  |
| 28x28 and larger | ``inception_fid``     | Inception-v3 pool3 (2048), TF 2015-12-05     |

Each image dataset declares its extractor (``Dataset.fid_extractor``); a
number is only comparable with another made by the same extractor, whose
hash travels in the protocol (:meth:`Extractor.describe`). The FID / KID
protocol on top of the features is :mod:`sfbench.eval.fid`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from sfbench.data import Dataset
from sfbench.errors import SfbenchError


@dataclass
class Extractor:
    """A pinned feature map, images in model scale [-1, 1] -> features [N, F]."""

    name: str
    module: nn.Module
    num_features: int
    sha256: str | None  # of the weights file; None for the parameter-free ``coords``
    protocol: dict = field(default_factory=dict)
    input_dtype: torch.dtype = torch.float32  # what the module computes in

    def features(self, x, batch_size: int = 100, device: str = "cpu") -> np.ndarray:
        """Features of x ``[N, ...]`` as float64 ``[N, F]``, ``batch_size`` images at a time."""
        x = torch.as_tensor(np.asarray(x), dtype=self.input_dtype)
        module = self.module.to(device)
        out = []
        with torch.no_grad():
            for chunk in x.split(batch_size):
                f = module(chunk.to(device)).double().reshape(chunk.shape[0], -1)
                out.append(f.cpu())
        feats = torch.cat(out).numpy()
        if feats.shape[1] != self.num_features:
            raise SfbenchError(
                f"{self.name} gave {feats.shape[1]} features, expected {self.num_features}"
            )
        return feats

    def describe(self) -> dict:
        return {"extractor": self.name, "extractor_sha256": self.sha256, **self.protocol}


class _Flatten(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class _ClassifierFeatures(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net.features(x)


def coords_extractor(dim: int) -> Extractor:
    protocol = {"features": "raw coordinates", "resize": None}
    return Extractor("coords", _Flatten(), dim, None, protocol, input_dtype=torch.float64)


def digits_classifier_extractor(path: str | Path, sha256: str | None = None) -> Extractor:
    from sfbench.eval.classifier import load_classifier

    net, record = load_classifier(path, sha256)
    return Extractor(
        "digits_classifier",
        _ClassifierFeatures(net),
        net.num_features,
        record["sha256"],
        {
            "features": f"penultimate layer ({net.num_features}) of the digits classifier, "
            "standardised on the train split",
            "classifier_file": record["path"],
            "classifier_test_accuracy": record["test_accuracy"],
            "classifier_train_accuracy": record["train_accuracy"],
            "resize": None,
        },
    )


def inception_extractor(path: str | Path | None = None) -> Extractor:
    from sfbench.eval.inception import INCEPTION_SHA256, InceptionFeatures

    module = InceptionFeatures(None if path is None else Path(path))
    return Extractor("inception_fid", module, module.num_features, INCEPTION_SHA256,
                     module.protocol())


#: name -> factory(weights path or None, dim) -> Extractor
EXTRACTORS: dict[str, Callable[[str | None, int], Extractor]] = {
    "coords": lambda weights, dim: coords_extractor(dim),
    "digits_classifier": lambda weights, dim: digits_classifier_extractor(_need(weights)),
    "inception_fid": lambda weights, dim: inception_extractor(weights),
}


def _need(weights: str | None) -> str:
    if weights is None:
        raise SfbenchError(
            "the digits FID needs the classifier file (--classifier), written by "
            "`sfbench classifier --dataset digits`"
        )
    return weights


def extractor_name(dataset: Dataset) -> str:
    """The extractor of ``dataset``'s FID: its declared ``fid_extractor``; ``coords`` for vectors.

    An image dataset that declares none is an error naming it: raw pixels are
    no FID anyone could compare with, so there is no silent fallback.
    """
    if dataset.kind == "vector":
        return "coords"
    name = dataset.fid_extractor
    if name is None:
        raise SfbenchError(
            f"image dataset {dataset.name!r} declares no fid_extractor, so it has no FID; "
            f"give it one of {', '.join(n for n in EXTRACTORS if n != 'coords')} "
            "(sfbench.data.DATASETS)"
        )
    if name not in EXTRACTORS:
        raise SfbenchError(
            f"dataset {dataset.name!r} declares fid_extractor {name!r}; valid: "
            f"{', '.join(EXTRACTORS)}"
        )
    return name


def get_extractor(name: str, weights: str | None = None, dim: int = 2) -> Extractor:
    """The extractor ``name`` (:data:`EXTRACTORS`) with its weights file if it needs one."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown feature extractor {name!r}; valid: {', '.join(EXTRACTORS)}")
    return EXTRACTORS[name](weights, dim)
