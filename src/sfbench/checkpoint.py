"""Checkpoints for resuming and model files for sampling.

- A *checkpoint* (``<dir>/last.pt``) holds everything a bit-identical resume
  needs: network, EMA, optimizer and scheduler state, the step, and every RNG
  state (torch CPU, CUDA, the training generator, numpy, python).
  It lives outside Snakemake's outputs (Snakemake deletes outputs of failed
  jobs), and is written atomically: a killed write leaves only a temporary file.
- A *model file* holds the EMA weights and the recipe (method, schedule and
  network settings) needed to rebuild a :class:`~sfbench.model.NetworkModel`;
  the network comes from its spec through :mod:`sfbench.models.registry`.

Both are plain dictionaries sealed with ``content_sha256``, a hash of every
tensor and every other value they hold (:func:`content_hash`). ``torch.load``
does not check the CRCs of its zip records, so without the seal a flipped bit
in the weights would load silently; :func:`load_file` recomputes the hash and
refuses the file, naming it.

Files are read by :func:`load_torch_file`, which unpickles tensors and plain
values only (``weights_only``): unpickling runs before the hash can be checked,
and a pickle may call any Python function, so a doctored file from a DVC
remote or a colleague would otherwise run its code on load. sfbench writes
nothing else (numpy's RNG state goes in as a tensor). Files that need more,
checkpoints of older versions among them, load only with the opt-in
``SFBENCH_TRUST_PICKLE=1``.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import random
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from sfbench.errors import CheckpointError
from sfbench.io import atomic_write_bytes
from sfbench.methods import get_method
from sfbench.model import NetworkModel
from sfbench.models.registry import build_network
from sfbench.models.registry import network_sample_shape as network_sample_shape  # re-exported

MODEL_FORMAT = "sfbench-model-v1"
CHECKPOINT_NAME = "last.pt"
HASH_KEY = "content_sha256"
TRUST_PICKLE_ENV = "SFBENCH_TRUST_PICKLE"


def _feed(digest, value) -> None:
    """Feed ``value`` to ``digest`` in a canonical form: type, shape and raw bytes."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous()
        digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray):  # numpy values: files of older versions (opt-in)
        digest.update(f"A{value.dtype.str}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):  # str and int keys (optimizer state) alike
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__[0]}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, bool | int | float | str | np.generic):
        text = repr(value.item() if isinstance(value, np.generic) else value)
        digest.update(f"S{type(value).__name__}:{len(text)}:{text}".encode())
    else:
        raise TypeError(f"cannot hash a {type(value).__name__} in a checkpoint")


def content_hash(obj: dict) -> str:
    """sha256 of every entry of ``obj`` except the seal itself."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in obj.items() if k != HASH_KEY})
    return digest.hexdigest()


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """torch.save ``obj`` sealed with its content hash, atomically."""
    buf = io.BytesIO()
    torch.save({**obj, HASH_KEY: content_hash(obj)}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _unreadable(what: str, path: Path, reason) -> CheckpointError:
    return CheckpointError(f"{what} {path} is corrupt or not a torch file: {reason}")


def load_torch_file(path: Path, what: str):
    """torch.load of tensors and plain values only, so that loading runs no code from the file.

    A file whose pickle calls any other Python function (a doctored file, or one
    of an older sfbench holding numpy objects) is refused, naming the function,
    unless ``$SFBENCH_TRUST_PICKLE`` is 1; then it is unpickled in full.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only names the function it refused as "GLOBAL module.name";
        # any other unpickling error is damaged bytes.
        refused = re.search(r"GLOBAL (\S+)", str(err))
        if refused is None:
            raise _unreadable(what, path, "its pickle is damaged or not torch.save's") from None
        function = refused.group(1)
    except Exception as err:  # truncated zip, bit flips, not a torch file
        raise _unreadable(what, path, err) from None
    if os.environ.get(TRUST_PICKLE_ENV) != "1":
        raise CheckpointError(
            f"{what} {path} is refused: loading it would run code named in the file "
            f"({function}), where sfbench files hold only tensors and plain values. If an older "
            f"sfbench wrote it and you trust its source, set {TRUST_PICKLE_ENV}=1 to load it "
            "anyway: that runs whatever code the file holds, with your permissions. "
            "Otherwise delete it and rerun the job that writes it"
        )
    warnings.warn(f"{TRUST_PICKLE_ENV}=1: unpickling {what} {path}, which calls {function}",
                  stacklevel=2)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise _unreadable(what, path, err) from None


def load_file(path: str | os.PathLike, what: str) -> dict:
    """A checkpoint or model file, its seal checked, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    obj = load_torch_file(path, what)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what} {path} does not hold an sfbench dictionary")
    stored = obj.pop(HASH_KEY, None)
    if stored is None:
        raise CheckpointError(
            f"{what} {path} has no content hash (written by another program or an older "
            "sfbench); delete it and rerun the job that writes it"
        )
    try:
        actual = content_hash(obj)
    except TypeError as err:
        raise CheckpointError(f"{what} {path} holds unexpected content: {err}") from None
    if actual != stored:
        raise CheckpointError(
            f"{what} {path} is corrupt: its content hash is {actual[:12]}..., "
            f"the file was sealed with {stored[:12]}...; delete it and rerun the job that writes it"
        )
    return obj


def build_model(method_name: str, schedule_kwargs: dict, network: dict) -> NetworkModel:
    method = get_method(method_name)
    return NetworkModel(build_network(network), method, method.schedule(**schedule_kwargs))


def save_model(path, model: NetworkModel, *, schedule_kwargs: dict, network: dict, meta: dict):
    return save_atomic(
        {
            "format": MODEL_FORMAT,
            "method": model.method.name,
            "schedule_kwargs": schedule_kwargs,
            "network": network,
            "state_dict": model.net.state_dict(),
            "meta": meta,
        },
        path,
    )


def load_model(path: str | os.PathLike) -> NetworkModel:
    """Rebuild the EMA model stored by ``sfbench train`` at ``path``."""
    obj = load_file(path, "model file")
    if obj.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path} is not an sfbench model file (format {obj.get('format')!r})")
    model = build_model(obj["method"], obj["schedule_kwargs"], obj["network"])
    try:
        model.net.load_state_dict(obj["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the network: {err}") from None
    model.meta = obj.get("meta", {})
    return model.eval()


def rng_states(generator: torch.Generator) -> dict:
    """Every RNG state as tensors and plain values, which load without unpickling code."""
    # numpy's legacy state is (name, MT19937 key as a uint32 array, pos, has_gauss, gauss);
    # the key goes in as an int64 tensor, which holds every uint32 exactly.
    name, key, *position = np.random.get_state()
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": (name, torch.from_numpy(key.astype(np.int64)), *position),
        "python": random.getstate(),  # (version, tuple of ints, None)
    }


def set_rng_states(states: dict, generator: torch.Generator) -> None:
    """Restore what :func:`rng_states` captured (a resumed run continues the same draws)."""
    generator.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, key, *position = states["numpy"]  # the key: a tensor, or an array in older checkpoints
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), *position))
    random.setstate(states["python"])
