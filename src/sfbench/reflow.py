r"""Reflow pairs: the deterministic coupling a trained flow defines.

A flow model maps noise to data by its ODE. Drawing z ~ N(0, I) at t = 0
(noise) and solving to t = 1 (data) gives pairs (x0, x1) = (z, ODE(z)) whose
coupling is deterministic; rectified flow trained on such pairs (2-RF) has
straighter paths, and a network regressed onto x1 - x0 at t = 0 is a one-step
sampler (Liu, Gong & Liu 2023, "Flow straight and fast", sec. 2.2-2.3).

The pairs of a (model, seed, solver, steps) are a function of those only:
sample i starts from the seed's noise i (:class:`sfbench.solvers.NoiseSource`),
so the same settings give the same arrays, and the file is written with fixed
zip timestamps so they also give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfbench.errors import DataFileError
from sfbench.io import atomic_write_bytes, load_array
from sfbench.model import PathModel
from sfbench.sampling import generate
from sfbench.solvers import get_solver

PAIRS_FORMAT = "sfbench-pairs-v1"
# Any fixed date: np.savez stamps each member with the current time, so two
# writes of equal arrays would differ in bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass
class Pairs:
    """Coupled (noise, data) rows: x0[i] at t = 0 is carried to x1[i] at t = 1.

    Attributes:
        x0: [N, d] float32 noise (the prior draws the ODE started from).
        x1: [N, d] float32 ODE solutions at the data end.
        settings: every setting that produced them (JSON-serialisable).
        nfe: model evaluations of one batch solve.
        sample_seconds: time spent solving.
    """

    x0: np.ndarray
    x1: np.ndarray
    settings: dict
    nfe: int = 0
    sample_seconds: float = 0.0


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (identifies the model the pairs came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def generate_pairs(
    model: PathModel,
    n_pairs: int,
    seed: int,
    *,
    solver: str = "rk4",
    steps: int | None = 32,
    batch_size: int | None = None,
    **options,
) -> Pairs:
    """(z, ODE(z)) for the first ``n_pairs`` noise draws of ``seed``.

    Args:
        model: a flow whose prior is N(0, I) at t_start and whose one-step
            restriction (if any) the solver meets; the pairs feed a model on
            the rectified-flow path, whose noise is N(0, I).
        solver: a deterministic solver (kind "ode"): a stochastic one would
            not define a coupling of the noise it started from.
        steps: grid steps (None for adaptive solvers; options carry rtol/atol).

    Raises:
        ValueError: for a stochastic solver or a prior other than N(0, I).
    """
    spec = get_solver(solver)
    if spec.kind != "ode":
        raise ValueError(f"reflow pairs need a deterministic (ODE) solver, got {solver!r}")
    prior_std = model.schedule.prior_std()
    if abs(prior_std - 1.0) > 1e-6:
        raise ValueError(
            f"reflow pairs need a model whose noise is N(0, I); this one starts from "
            f"N(0, {prior_std:.4g}^2 I) (path {model.schedule.describe()['name']})"
        )
    res = generate(
        model, solver, steps, n_pairs, seed, batch_size=batch_size, record_trajectory=False,
        **options,
    )
    x1 = res.samples.numpy().astype(np.float32)
    if not np.isfinite(x1).all():
        raise ValueError(f"the ODE solve gave {int((~np.isfinite(x1)).any(1).sum())} "
                         "non-finite pairs; use more steps or a tighter tolerance")
    x0 = res.initial.numpy().astype(np.float32)
    settings = {**res.settings, "n_pairs": n_pairs}
    return Pairs(x0=x0, x1=x1, settings=settings, nfe=res.nfe, sample_seconds=res.wall_seconds)


def save_pairs(path: str | os.PathLike, pairs: Pairs) -> Path:
    """Write ``x0``, ``x1`` and the settings (JSON text) as an .npz, atomically, byte-stable."""
    members = {
        "x0": pairs.x0,
        "x1": pairs.x1,
        "format": np.asarray(PAIRS_FORMAT),
        "settings": np.asarray(json.dumps(pairs.settings, sort_keys=True)),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, array in members.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            z.writestr(info, member.getvalue())
    return atomic_write_bytes(path, buf.getvalue())


def load_pairs(path: str | os.PathLike, shape: tuple[int, ...]) -> Pairs:
    """Read and check a pairs file: x0 and x1 finite, equal length, one sample of ``shape``.

    Raises:
        DataFileError: naming the file and what is wrong with it.
    """
    x0 = load_array(path, "x0", shape=shape)
    x1 = load_array(path, "x1", shape=shape)
    if x0.shape != x1.shape:
        raise DataFileError(
            f"{path}: x0 has {x0.shape[0]} rows and x1 {x1.shape[0]}; pairs need equal counts"
        )
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"][()]) != PAIRS_FORMAT:
            raise DataFileError(f"{path} is not an sfbench pairs file (no format {PAIRS_FORMAT!r})")
        settings = json.loads(str(z["settings"][()])) if "settings" in z.files else {}
    return Pairs(x0=x0, x1=x1, settings=settings)
