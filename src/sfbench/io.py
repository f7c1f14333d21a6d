"""Atomic file writing and validated reading of the files jobs exchange.

Every output is written to a temporary file in the destination directory and
renamed into place, so a killed job leaves either the old file or none, never
half a file. A write that fails (read-only directory, disk full) removes its
temporary file and raises :class:`~sfbench.errors.OutputWriteError` naming
the destination, so the job exits non-zero with nothing written.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from sfbench import plugins
from sfbench.errors import DataFileError, OutputWriteError, SfbenchError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputWriteError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):  # ENOSPC, EFBIG, EROFS...: say which output failed
            raise OutputWriteError(f"cannot write {path}: {err.strerror or err}") from err
        raise
    return path


def write_json(path: str | os.PathLike, obj) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True, default=_jsonable) + "\n"
    return atomic_write_bytes(path, text.encode())


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_array(
    path: str | os.PathLike,
    key: str,
    dim: int | None = None,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Array ``key`` of an .npz file as float32, checked to be non-empty and finite.

    - ``shape`` given (one sample's shape, e.g. (1, 8, 8)): the array must be
      ``[N, *shape]`` or flat ``[N, prod(shape)]`` (how samplers write images)
      and is returned as ``[N, *shape]``;
    - else ``dim`` given: the array must be ``[N, dim]``;
    - else any ``[N, ...]`` with at least two axes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise DataFileError(f"{path} has no array {key!r} (it has: {', '.join(z.files)})")
            arr = z[key]
    except DataFileError:
        raise
    except Exception as err:  # zip or header corruption: name the file
        raise DataFileError(f"cannot read {path}: {err}") from None
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        flat = int(np.prod(shape))
        if arr.ndim >= 2 and arr.shape[1:] in (shape, (flat,)):
            arr = arr.reshape(arr.shape[0], *shape)
        else:
            want = f"[N, {', '.join(map(str, shape))}] or [N, {flat}]"
            raise DataFileError(f"{path}:{key} has shape {list(arr.shape)}, expected {want}")
    elif arr.ndim < 2 or (dim is not None and (arr.ndim != 2 or arr.shape[1] != dim)):
        want = f"[N, {dim}]" if dim is not None else "[N, d] or [N, ...]"
        raise DataFileError(f"{path}:{key} has shape {list(arr.shape)}, expected {want}")
    if arr.shape[0] == 0:
        raise DataFileError(f"{path}:{key} is empty")
    bad = int((~np.isfinite(arr)).reshape(arr.shape[0], -1).any(axis=1).sum())
    if bad:
        raise DataFileError(f"{path}:{key} holds {bad} rows with NaN or Inf")
    return arr.astype(np.float32)


def environment() -> dict:
    """Versions that can change a number, written next to every result."""
    import torch

    import sfbench

    env = {
        "sfbench": sfbench.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
    # Read from the installed metadata: importing POT, torchmetrics and scipy
    # only to ask their version cost 1.5 s per job.
    for name in ("torchdiffeq", "POT", "torchmetrics", "scipy", "scikit-learn"):
        try:
            env[name.lower()] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            env[name.lower()] = None
    if plugins.distributions():  # plug-in code shapes results as much as sfbench's own
        env["plugins"] = plugins.distributions()
    return env


def read_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path) as f:
            values = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise SfbenchError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise SfbenchError(f"config file {path} must hold a mapping of settings")
    return values
