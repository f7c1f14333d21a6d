"""The digits feature extractor: a small CNN trained by sfbench itself on the digits train split.

Inception-v3 features mean little on 8x8 images, so the digits FID uses the
penultimate layer of a classifier trained on the digits' own train split
(the approach of e.g. the MNIST "FID" of many small-scale papers, with a
network pinned by its file hash instead of downloaded weights).

Training is deterministic: fixed seed, one torch thread, fixed number of
steps, minibatches and +-1 pixel random shifts drawn from one seeded
generator. The file records the settings, train and test accuracy; its
sha256 pins the extractor, and every FID records both.

Architecture: conv3x3(1->32) SiLU, conv3x3(32->64, stride 2) SiLU (4x4),
conv3x3(64->64) SiLU, flatten (1024), linear 1024->64, SiLU -> h (64),
linear 64->10 -> logits. SiLU (not ReLU) leaves no unit exactly zero, so the
feature covariance of a few hundred images is not rank-deficient by dead
units. The *features* are h standardised by its mean and std over the train
split, fixed after training and stored with the weights: every unit then
has unit scale, so FID weighs the units alike and KID's cubic kernel
(a.b / F + 1)^3 sees inputs of the scale it was designed for (raw h reaches
tens, which made KID values of order 10^4).
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfbench.checkpoint import load_torch_file
from sfbench.errors import CheckpointError
from sfbench.io import atomic_write_bytes

CLASSIFIER_FORMAT = "sfbench-digits-classifier-v1"


class DigitsCNN(nn.Module):
    """[B, 1, 8, 8] in [-1, 1] -> logits [B, 10]; :meth:`features`: the penultimate units."""

    num_features = 64

    def __init__(self, width: int = 32, num_features: int = 64, num_classes: int = 10):
        super().__init__()
        self.num_features = num_features
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 16, num_features), nn.SiLU(),
        )
        self.head = nn.Linear(num_features, num_classes)
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))

    def features(self, x: Tensor) -> Tensor:
        """The standardised penultimate units, (h - mean_train) / std_train."""
        return (self.body(x.reshape(-1, 1, 8, 8)) - self.feature_mean) / self.feature_std

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x.reshape(-1, 1, 8, 8)))


@dataclass(frozen=True)
class ClassifierConfig:
    """Every setting that shapes the trained classifier (written into its file)."""

    seed: int = 0
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 32
    num_features: int = 64
    max_shift: int = 1  # random translation by up to this many pixels (zero padding)


def _shift(x: Tensor, max_shift: int, gen: torch.Generator) -> Tensor:
    """Each image translated by integers in [-max_shift, max_shift]^2, zero (= -1 level) padded."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None]).reshape(n, 1, h, 1)
    out = padded.gather(2, rows.expand(n, 1, h, w + 2 * max_shift))
    cols = (dx[:, None] + torch.arange(w)[None]).reshape(n, 1, 1, w).expand(n, 1, h, w)
    return out.gather(3, cols)


def accuracy(net: DigitsCNN, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = net(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    return float((pred == y).mean())


@dataclass
class TrainedClassifier:
    net: DigitsCNN
    config: ClassifierConfig
    train_accuracy: float
    test_accuracy: float
    wall_seconds: float


def train_classifier(
    cfg: ClassifierConfig,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
) -> TrainedClassifier:
    """Train :class:`DigitsCNN` with AdamW and cross-entropy; deterministic in ``cfg.seed``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reductions in a fixed order: the same weights on every run
    try:
        torch.manual_seed(cfg.seed)
        net = DigitsCNN(cfg.width, cfg.num_features)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        x = torch.as_tensor(train_x, dtype=torch.float32)
        y = torch.as_tensor(train_y, dtype=torch.int64)
        start = time.perf_counter()
        net.train()
        for _ in range(cfg.steps):
            idx = torch.randint(x.shape[0], (cfg.batch_size,), generator=gen)
            loss = F.cross_entropy(net(_shift(x[idx], cfg.max_shift, gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            h = net.body(x)
            net.feature_mean.copy_(h.mean(0))
            net.feature_std.copy_(h.std(0))
        seconds = time.perf_counter() - start
        return TrainedClassifier(
            net, cfg, accuracy(net, train_x, train_y), accuracy(net, test_x, test_y), seconds
        )
    finally:
        torch.set_num_threads(threads)


def save_classifier(path: str | Path, trained: TrainedClassifier, meta: dict) -> str:
    """Write the classifier atomically; return the file's sha256."""
    buf = io.BytesIO()
    torch.save(
        {
            "format": CLASSIFIER_FORMAT,
            "config": asdict(trained.config),
            "state_dict": trained.net.state_dict(),
            "train_accuracy": trained.train_accuracy,
            "test_accuracy": trained.test_accuracy,
            "meta": meta,
        },
        buf,
    )
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_classifier(path: str | Path, sha256: str | None = None) -> tuple[DigitsCNN, dict]:
    """The classifier in ``path`` (eval mode) and its record (accuracy, config, sha256).

    With ``sha256`` given, a file with another hash is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"digits classifier not found: {path} (train it with "
            "`sfbench classifier --dataset digits --out <file> --result <json>`)"
        )
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise CheckpointError(f"digits classifier {path} has sha256 {digest}, expected {sha256}")
    obj = load_torch_file(path, "digits classifier")
    if not isinstance(obj, dict) or obj.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{path} is not an sfbench digits classifier")
    cfg = obj["config"]
    net = DigitsCNN(cfg["width"], cfg["num_features"])
    net.load_state_dict(obj["state_dict"])
    record = {
        "path": str(path),
        "sha256": digest,
        "test_accuracy": obj["test_accuracy"],
        "train_accuracy": obj["train_accuracy"],
        "config": cfg,
    }
    return net.eval(), record
