"""A plain PyTorch network named by a model spec (``kind: torch``) as an sfbench path model.

The spec's ``network`` is a callable, ``module:function`` (imported as usual,
so the module must be importable) or ``file.py:function`` (loaded from that
file): calling it with ``kwargs`` returns the ``nn.Module``. Loading a spec
therefore runs that code, as naming a model class in any config does. Its
``weights`` are a state_dict, read as safetensors (``.safetensors``) or with
``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from sfbench.errors import ExternalModelError
from sfbench.external.spec import ModelSpec
from sfbench.external.wrappers import ContinuousTimeModel
from sfbench.paths import SCHEDULES, Schedule


def _module(name: str):
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ExternalModelError(f"network module file not found: {path}")
        # A name of its own per file, so two specs' model.py do not shadow each other.
        key = "sfbench_external_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[key]
            raise ExternalModelError(f"network module {path} does not import: "
                                     f"{type(err).__name__}: {err}") from None
        return module
    try:
        return importlib.import_module(name)
    except Exception as err:  # ImportError, or an error raised by the module's own code
        raise ExternalModelError(f"network module {name!r} does not import: "
                                 f"{type(err).__name__}: {err}") from None


def resolve_callable(ref: str):
    """The object ``module:attr`` (``attr`` may be dotted) names; it must be callable."""
    module_name, _, attr = ref.rpartition(":")
    module = _module(module_name)
    try:
        obj = functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        raise ExternalModelError(f"network {ref!r}: {module_name} has no {attr!r}") from None
    if not callable(obj):
        raise ExternalModelError(f"network {ref!r} is not callable "
                                 f"(a {type(obj).__name__})")
    return obj


def build_network(ref: str, kwargs: dict) -> nn.Module:
    """Call the spec's network callable; the result must be an ``nn.Module``."""
    make = resolve_callable(ref)
    try:
        net = make(**kwargs)
    except Exception as err:
        raise ExternalModelError(f"network {ref!r} failed when called with kwargs {kwargs}: "
                                 f"{type(err).__name__}: {err}") from None
    if not isinstance(net, nn.Module):
        raise ExternalModelError(f"network {ref!r} returned a {type(net).__name__}, "
                                 "not a torch.nn.Module")
    return net


def read_state_dict(path: Path) -> dict:
    """A state_dict file: safetensors, else torch.load with weights_only (no pickled code)."""
    if not path.is_file():
        raise ExternalModelError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError:
                raise ExternalModelError(
                    f"{path}: reading .safetensors needs the safetensors package "
                    '(pip install safetensors, or pip install -e ".[diffusers]")') from None
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except ExternalModelError:
        raise
    except Exception as err:
        raise ExternalModelError(f"cannot read weights {path}: {type(err).__name__}: {err}"
                                 ) from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ExternalModelError(f"weights {path} are not a state_dict (a mapping of tensors)")
    return state


def _schedule(spec: ModelSpec) -> Schedule:
    settings = dict(spec.schedule)
    name = settings.pop("name")
    try:
        return SCHEDULES[name](**settings)
    except (TypeError, ValueError) as err:
        raise ExternalModelError(f"model spec {spec.file}: schedule {name} with settings "
                                 f"{settings}: {err}") from None


def load_torch(spec: ModelSpec) -> tuple[ContinuousTimeModel, dict]:
    """The path model a ``kind: torch`` spec declares, and what the record says of it."""
    schedule = _schedule(spec)  # a bad setting fails before the user's code runs
    net = build_network(spec.network, spec.kwargs)
    if spec.weights is not None:
        try:
            net.load_state_dict(read_state_dict(spec.weights))
        except RuntimeError as err:  # missing / unexpected keys, shape mismatches
            raise ExternalModelError(f"weights {spec.weights} do not fit network "
                                     f"{spec.network!r}: {err}") from None
    net.eval().requires_grad_(False)
    model = ContinuousTimeModel(net, schedule, spec.prediction, spec.sample_shape,
                                time=spec.time, inputs=spec.inputs)
    return model, {"prediction": spec.prediction, "network": spec.network, "time": spec.time}
