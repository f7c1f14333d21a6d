"""One entry point for models sfbench did not train: :func:`load_any_model`.

``--model`` of ``sfbench sweep``, ``sample``, ``evaluate --nll`` and
``decompose`` names a diffusers directory or a model spec file here (an
sfbench model file goes to :func:`sfbench.checkpoint.load_model`). Every
external model is probed once at load, with a batch of 2 at the middle of its
sampling interval, so a network that fails or returns the wrong shape is
refused before any sampling starts; and if its dataset is known, the
dataset's sample shape must be the model's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sfbench.errors import ExternalModelError
from sfbench.external.spec import SPEC_SUFFIXES, ModelSpec, is_spec_file, read_spec


def is_external(path: str | Path) -> bool:
    """True when ``path`` names an external model: a directory or a spec file."""
    return Path(path).is_dir() or is_spec_file(path)


def probe(model) -> None:
    """Call the model once on a batch of 2 (zeros), refusing a failure or a wrong shape."""
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    x = torch.zeros(2, *model.sample_shape, dtype=dtype).flatten(1)
    t = 0.5 * (model.schedule.t_start + model.schedule.t_end)
    try:
        with torch.no_grad():
            model.predict(x, t)
    except ExternalModelError:
        raise
    except Exception as err:
        raise ExternalModelError(
            f"calling the network on a batch of 2 samples of shape "
            f"{list(model.sample_shape)} failed: {type(err).__name__}: {err}") from None


def check_dataset(model, dataset: str) -> None:
    """The dataset's samples must have the model's sample shape."""
    from sfbench.data import get_dataset

    try:
        shape = tuple(get_dataset(dataset).shape)
    except (ValueError, FileNotFoundError) as err:
        raise ExternalModelError(str(err)) from None
    if shape != tuple(model.sample_shape):
        raise ExternalModelError(
            f"the model's samples have shape {list(model.sample_shape)}, but dataset "
            f"{dataset!r} has samples of shape {list(shape)}")


def _load(spec: ModelSpec):
    if spec.kind == "diffusers":
        from sfbench.external.diffusers_loader import load_diffusers

        return load_diffusers(spec.path)
    from sfbench.external.torch_loader import load_torch

    return load_torch(spec)


def _spec_of(path: Path) -> ModelSpec:
    if path.is_dir():
        return ModelSpec(file=path, kind="diffusers", name=path.resolve().name, path=path)
    if not path.exists():
        raise ExternalModelError(f"model not found: {path}")
    if not is_spec_file(path):
        raise ExternalModelError(f"{path} is neither a diffusers model directory nor a model "
                                 f"spec ({', '.join(SPEC_SUFFIXES)})")
    return read_spec(path)


def load_any_model(path: str | Path, dataset: str | None = None) -> tuple[object, dict]:
    """The path model of a diffusers directory or a model spec, and its record.

    Args:
        path: a diffusers model directory, or a ``.yaml`` / ``.yml`` / ``.json`` spec
            (:mod:`sfbench.external.spec`).
        dataset: the command's ``--dataset``, if any; used when the spec names none,
            refused when it names another.

    Returns:
        (model, info): info holds ``source`` ("diffusers" / "torch"), ``path``,
        ``method`` (the spec's name, else the folder's or file's stem), ``dataset``
        (or None), ``prediction`` (as the source names it), ``schedule``
        (``describe()``), ``external`` (True), and per source ``scheduler`` /
        ``model_class`` (diffusers) or ``network`` / ``time`` (torch).

    Raises:
        ExternalModelError: naming the file and what is wrong.
    """
    path = Path(path)
    label = f"model {path}"
    try:
        spec = _spec_of(path)
        if spec.dataset and dataset and spec.dataset != dataset:
            raise ExternalModelError(f"it declares dataset {spec.dataset!r}, but --dataset "
                                     f"is {dataset!r}")
        dataset = spec.dataset or dataset
        model, details = _load(spec)
        probe(model)
        if dataset:
            check_dataset(model, dataset)
    except ExternalModelError as err:  # every message names the model it is about
        raise ExternalModelError(str(err) if str(path) in str(err) else f"{label}: {err}"
                                 ) from None
    info = {"source": spec.kind, "path": str(path), "method": spec.name, "dataset": dataset,
            "prediction": details.pop("prediction"), "schedule": model.schedule.describe(),
            "external": True, **details}
    if spec.kind == "diffusers" and spec.path != path:
        info["model_path"] = str(spec.path)
    return model, info
