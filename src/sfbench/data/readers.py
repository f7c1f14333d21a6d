"""Readers of the two standard image-file formats: IDX (MNIST family) and CIFAR's pickles.

Both return the raw pixel values as ``uint8`` arrays, untouched; scaling to
the model's range is :mod:`sfbench.data.images`' job. Malformed files raise
:class:`~sfbench.errors.DataFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

from sfbench.errors import DataFileError

# IDX magic: two zero bytes, a type code, the number of dimensions (LeCun's MNIST page).
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it is a gzip file (by its magic, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataFileError(f"cannot read {path}: {err}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataFileError(f"{path} is a corrupt gzip file: {err}") from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), e.g. ``train-images-idx3-ubyte.gz``.

    Layout: bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte),
    byte 3 the number of dimensions n, then n big-endian uint32 sizes, then
    the elements in C order.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataFileError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path}: IDX header truncated")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataFileError(
            f"{path}: IDX header says shape {list(shape)} ({expected} bytes), file has {len(raw)}"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays only (no arbitrary code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` (uint8) and labels ``[N]`` of one CIFAR-10 python batch.

    The format of ``cifar-10-batches-py`` (Krizhevsky 2009): a pickled dict
    with ``b'data'``, an ``[N, 3072]`` uint8 array whose rows hold the red,
    green and blue 32 x 32 planes in turn, and ``b'labels'``, N integers.
    """
    path = Path(path)
    raw = _read_bytes(path)
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # truncated stream, foreign classes, not a pickle
        raise DataFileError(f"{path} is not a CIFAR-10 python batch: {err}") from None
    if not isinstance(obj, dict):
        raise DataFileError(f"{path} does not hold a dict (got {type(obj).__name__})")
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise DataFileError(f"{path} has no 'data'/'labels' entries (it has {sorted(obj)})")
    data = np.asarray(obj["data"])
    labels = np.asarray(obj["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataFileError(
            f"{path}: 'data' is {data.dtype} of shape {list(data.shape)}, expected uint8 [N, 3072]"
        )
    if labels.shape != (data.shape[0],):
        raise DataFileError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32), labels
