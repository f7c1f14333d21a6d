"""What an MLflow run holds of a command's record: params, metrics, tags, dataset inputs.

Pure functions of the record (and, for dataset inputs, of the bytes of the
data files it names): nothing here imports MLflow, so the mapping is tested
without it and the store plumbing (:mod:`sfbench.tracking.store`) only turns
these values into MLflow entities.

- params: every entry of ``record["settings"]``, flattened with dots;
- metrics: every number of ``record["result"]`` (a list of ``[step, value]``
  pairs, such as a loss history, becomes a metric series);
- tags: ``method``, ``dataset``, ``solver``, ``steps``, ``seed`` from the
  settings (or the model's description in them);
- dataset inputs: the data file the job read (:func:`record_datasets`), named
  ``<dataset>/<split>``, with the md5 of the file's bytes as digest, its path
  as a ``local`` source, the split, rows and size as profile and the context
  ``training`` (train split, reflow pairs) or ``evaluation`` (test split).
  A file that cannot be read is left out with a warning; it never fails a job.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JOB_KEY_TAG = "job_key"
PARENT_KEY_TAG = "parent_key"
DATASET_CONTEXT_TAG = "mlflow.data.context"  # mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT
SPLIT_CONTEXTS = {"train": "training", "pairs": "training", "test": "evaluation"}
RECORD_TAGS = ("method", "dataset", "solver", "steps", "seed")
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


def warn(message: str) -> None:
    """Tracking trouble is reported, never raised: it must not fail a job."""
    print(f"sfbench: warning: {message}", file=sys.stderr)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def record_params(record: Mapping[str, Any]) -> dict[str, str]:
    """Every setting, flattened, as MLflow param text (JSON for non-strings, truncated)."""
    return {k: _param_text(v) for k, v in flatten(record.get("settings", {})).items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def record_metrics(record: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """(key, value, step) of every number in ``record["result"]``."""
    metrics = []
    for key, value in flatten(record.get("result", {})).items():
        if _is_number(value):
            metrics.append((key, float(value), 0))
        elif isinstance(value, list) and value and all(
            isinstance(p, list | tuple) and len(p) == 2 and all(map(_is_number, p)) for p in value
        ):
            metrics.extend((key, float(v), int(s)) for s, v in value)
    return metrics


def record_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """method, dataset, solver, steps, seed from the settings (or the model's description)."""
    settings = record.get("settings", {})
    nested = settings.get("model") if isinstance(settings.get("model"), Mapping) else {}
    tags = {}
    for name in RECORD_TAGS:
        value = settings.get(name)
        if value is None:
            value = nested.get(name)
        if value is not None:
            tags[name] = str(value)
    return tags


_DIGESTS: dict[tuple, str] = {}  # (real path, size, mtime, inode) -> md5, per process


def file_digest(path: str | os.PathLike) -> str:
    """md5 of a file's bytes: 32 hex digits (MLflow keeps at most 36), DVC's hash of the file."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def record_datasets(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The data files a record's job read or wrote: ``{"split", "path", "rows"}`` each.

    ``data``: both splits of the ``.npz`` it wrote; ``train``: the train split
    of ``data_file`` or the reflow ``pairs_file`` (none when it drew its data
    in memory); any other record (sweep, evaluate, decompose, a sweep's NLL
    child) whose settings name ``data``: its test split.
    """
    settings = record.get("settings") or {}
    command = record.get("command")
    if command == "data":
        files = [p for p in record.get("outputs") or [] if str(p).endswith(".npz")]
        if not files:
            return []
        return [{"split": "train", "path": files[0], "rows": settings.get("n_train")},
                {"split": "test", "path": files[0], "rows": settings.get("n_test")}]
    if command == "train":
        for key, split in (("pairs_file", "pairs"), ("data_file", "train")):
            if settings.get(key):
                return [{"split": split, "path": settings[key], "rows": settings.get("n_train")}]
        return []
    if isinstance(settings.get("data"), str) and settings["data"]:
        return [{"split": "test", "path": settings["data"], "rows": settings.get("n_test")}]
    return []


def dataset_input_specs(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The dataset inputs of a record as plain values, one per :func:`record_datasets` file.

    Each: ``name`` (``<dataset>/<split>``), ``digest`` (:func:`file_digest`),
    ``uri`` (the file's absolute path), ``profile`` {split, rows, bytes, file}
    and ``context`` (``training`` or ``evaluation``). Only the file's bytes are
    read (by the hash), not its arrays; an unreadable file is left out with a warning.
    """
    dataset = record_tags(record).get("dataset")
    specs = []
    for item in record_datasets(record):
        path = Path(item["path"])
        try:
            digest, size = file_digest(path), path.stat().st_size
        except OSError as err:
            warn(f"dataset input {path} left out of the MLflow run: {err}")
            continue
        profile = {"split": item["split"], "bytes": size, "file": str(item["path"])}
        if item.get("rows") is not None:
            profile["rows"] = item["rows"]
        specs.append({
            "name": f"{dataset or path.stem}/{item['split']}",
            "digest": digest,
            "uri": str(path.resolve()),
            "profile": profile,
            "context": SPLIT_CONTEXTS[item["split"]],
        })
    return specs
