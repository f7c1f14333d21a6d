"""The model spec file: a small YAML or JSON file that declares a model sfbench did not train.

Two kinds (``kind:``):

- ``torch``: a plain PyTorch network, ``network: "module:function"`` (or
  ``"file.py:function"``) with optional ``kwargs`` and ``weights`` (a state_dict
  file), on the sfbench path ``schedule`` (a name in :data:`sfbench.paths.SCHEDULES`,
  or a mapping ``{name: ..., <its settings>}``), predicting ``prediction``
  (one of :data:`sfbench.paths.TARGETS`), in the time convention ``time``, on
  samples of shape ``sample_shape``; ``inputs`` is its call order, ``[x, t]``
  (default) or ``[t, x]`` (torchcfm's U-Net);
- ``diffusers``: a diffusers model directory, ``path``.

Both take an optional ``name`` (the record's method; default the file's stem) and
``dataset``. Relative paths resolve against the spec file's folder. Unknown keys
are refused, so a misspelt setting cannot be silently ignored; the prediction and
time convention have no default, since a wrong guess samples garbage without error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfbench.errors import ExternalModelError

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
KINDS = ("torch", "diffusers")

#: ``data_at_1``: sfbench, torchcfm and flow_matching (t = 0 noise, t = 1 data);
#: ``noise_at_1``: the diffusion papers' (t = 0 data, t = 1 noise).
TIME_CONVENTIONS = ("data_at_1", "noise_at_1")
INPUT_ORDERS = (("x", "t"), ("t", "x"))

_COMMON = {"kind", "name", "dataset"}
_KEYS = {
    "torch": _COMMON | {"network", "kwargs", "weights", "schedule", "prediction", "time",
                        "sample_shape", "inputs"},
    "diffusers": _COMMON | {"path"},
}
_REQUIRED = {
    "torch": ("network", "schedule", "prediction", "time", "sample_shape"),
    "diffusers": ("path",),
}


@dataclass(frozen=True)
class ModelSpec:
    """A validated spec file; paths are absolute."""

    file: Path
    kind: str
    name: str
    dataset: str | None = None
    path: Path | None = None  # diffusers
    network: str | None = None  # torch: "module:function" (a file module made absolute)
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: Path | None = None
    schedule: dict[str, Any] = field(default_factory=dict)  # {"name": ..., settings}
    prediction: str | None = None
    time: str = "data_at_1"
    sample_shape: tuple[int, ...] = ()
    inputs: tuple[str, str] = ("x", "t")


def is_spec_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SPEC_SUFFIXES


def _fail(file: Path, message: str):
    raise ExternalModelError(f"model spec {file}: {message}")


def _read(file: Path) -> dict:
    import yaml  # a JSON document is YAML too

    if not file.is_file():
        raise ExternalModelError(f"model spec not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        _fail(file, f"not valid YAML/JSON: {err}")
    if not isinstance(raw, dict):
        _fail(file, "must be a mapping with a `kind:` (torch or diffusers)")
    return raw


def _resolve(file: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        _fail(file, f"`{key}` must be a path, got {value!r}")
    p = Path(value).expanduser()
    return p if p.is_absolute() else (file.parent / p).resolve()


def _network(file: Path, value: Any) -> str:
    """``module:function``; a module given as a .py file resolves against the spec's folder."""
    if not isinstance(value, str) or value.count(":") < 1:
        _fail(file, f"`network` must be 'module:function' or 'file.py:function', got {value!r}")
    module, _, attr = value.rpartition(":")
    if not module or not attr:
        _fail(file, f"`network` must be 'module:function' or 'file.py:function', got {value!r}")
    if module.endswith(".py"):
        module = str(_resolve(file, module, "network"))
    return f"{module}:{attr}"


def _schedule(file: Path, value: Any) -> dict:
    from sfbench.paths import SCHEDULES

    settings = {"name": value} if isinstance(value, str) else value
    if not isinstance(settings, dict) or settings.get("name") not in SCHEDULES:
        _fail(file, f"`schedule` must name one of {', '.join(SCHEDULES)} (as a string or "
                    f"{{name: ..., <settings>}}), got {value!r}")
    return dict(settings)


def _sample_shape(file: Path, value: Any) -> tuple[int, ...]:
    ok = isinstance(value, list) and value and all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value)
    if not ok:
        _fail(file, f"`sample_shape` must be a list of positive integers, e.g. [2] or "
                    f"[1, 28, 28], got {value!r}")
    return tuple(value)


def _torch_fields(file: Path, raw: dict) -> dict:
    from sfbench.paths import TARGETS

    if raw["prediction"] not in TARGETS:
        _fail(file, f"unknown prediction {raw['prediction']!r}; valid: {', '.join(TARGETS)}")
    if raw["time"] not in TIME_CONVENTIONS:
        _fail(file, f"unknown time convention {raw['time']!r}; valid: "
                    f"{', '.join(TIME_CONVENTIONS)} (data_at_1: t = 0 noise, t = 1 data)")
    inputs = tuple(raw.get("inputs", ("x", "t")))
    if inputs not in INPUT_ORDERS:
        _fail(file, f"`inputs` must be [x, t] or [t, x], got {raw['inputs']!r}")
    kwargs = raw.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        _fail(file, f"`kwargs` must be a mapping, got {kwargs!r}")
    weights = raw.get("weights")
    return {
        "network": _network(file, raw["network"]),
        "kwargs": kwargs,
        "weights": None if weights is None else _resolve(file, weights, "weights"),
        "schedule": _schedule(file, raw["schedule"]),
        "prediction": raw["prediction"],
        "time": raw["time"],
        "sample_shape": _sample_shape(file, raw["sample_shape"]),
        "inputs": inputs,
    }


def read_spec(path: str | Path) -> ModelSpec:
    """Parse and validate the spec file ``path`` (module doc).

    Raises:
        ExternalModelError: naming the file and what is wrong with it.
    """
    file = Path(path).resolve()
    raw = _read(file)
    kind = raw.get("kind")
    if kind not in KINDS:
        _fail(file, f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(raw) - _KEYS[kind])
    if unknown:
        _fail(file, f"unknown key(s) {', '.join(unknown)} for kind {kind}; valid: "
                    f"{', '.join(sorted(_KEYS[kind]))}")
    missing = [k for k in _REQUIRED[kind] if raw.get(k) is None]
    if missing:
        _fail(file, f"kind {kind} needs {', '.join(missing)}")
    for key in ("name", "dataset"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            _fail(file, f"`{key}` must be a string, got {raw[key]!r}")
    common = {"file": file, "kind": kind, "name": raw.get("name") or file.stem,
              "dataset": raw.get("dataset")}
    if kind == "diffusers":
        return ModelSpec(**common, path=_resolve(file, raw["path"], "path"))
    return ModelSpec(**common, **_torch_fields(file, raw))


def model_files(path: str | Path) -> list[Path]:
    """Every file an external model is read from: a spec, the network's file and weights it
    names; every file of a diffusers directory. A workflow reruns the model's jobs when one
    of them changes (a network named by an importable module is not followed)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    spec = read_spec(path)
    files = [path]
    if spec.kind == "diffusers":
        return files + model_files(spec.path)
    module = spec.network.rpartition(":")[0]
    if module.endswith(".py"):
        files.append(Path(module))
    if spec.weights is not None:
        files.append(spec.weights)
    return files
