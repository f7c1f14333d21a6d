"""The MLflow store: where it is, creating it safely, retrying SQLite locks, writing to it.

The backend is ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` in the
working directory. A SQLite store is created under a file lock, so parallel
jobs that meet a new database do not race on its creation (the pipeline also
creates it in ``onstart`` with :func:`ensure_tracking_store`), and every call
that SQLite answers with "database is locked" is retried with backoff.

The experiment is tagged ``mlflow.experimentKind = custom_model_development``
("Machine learning") when sfbench creates or first uses it, unless a kind was
chosen by hand, so MLflow 3 UIs that read the tag open it on its runs, not on
traces. (MLflow 3.17's UI ignores the tag: the view comes from its sidebar's
GenAI / Model training switch, or ``?workflowType=machine_learning`` in the
experiment's URL, which opens the runs table.)

MLflow is imported inside the functions that talk to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sfbench.tracking.records import (
    DATASET_CONTEXT_TAG,
    JOB_KEY_TAG,
    dataset_input_specs,
    warn,
)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# MLflow 3's UI reads this experiment tag to choose between its GenAI view
# (traces) and its machine-learning view (runs) where its sidebar has no GenAI /
# Model training switch (3.17 has one and ignores the tag). The values are the
# UI's ExperimentKind enum (mlflow/server/js/build; "custom_model_development"
# is shown as "Machine learning"); kinds the UI only inferred may be replaced.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
INFERRED_KINDS = frozenset(
    ("", "no_inferred_type", "genai_development_inferred", "custom_model_development_inferred")
)
_LOCKED_ERRORS = ("database is locked", "database table is locked")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive file lock next to a SQLite store (no-op for other backends)."""
    path = _sqlite_path(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def retry(fn, *args, attempts: int = 8, **kwargs):
    """Call an MLflow client method, retrying while SQLite reports a lock."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # MlflowException wraps sqlalchemy's OperationalError
            if attempt == attempts - 1 or not any(s in str(err) for s in _LOCKED_ERRORS):
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_tracking_store(uri: str | None = None) -> str:
    """Create the tracking store (SQLite tables) once, under a lock; return its URI.

    Call before parallel jobs start: MLflow's SQLite store fails when two
    processes create a new database at the same moment.
    """
    uri = uri or tracking_uri()
    with store_lock(uri):
        client_for(uri).search_experiments(max_results=1)
    return uri


def _ensure_experiment_kind(client, experiment) -> None:
    """Tag ``experiment`` as a machine-learning one unless a kind was chosen by hand."""
    if experiment.tags.get(EXPERIMENT_KIND_TAG, "") not in INFERRED_KINDS:
        return
    try:  # a view setting: never a reason to fail a job
        retry(client.set_experiment_tag, experiment.experiment_id,
              EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    except Exception as err:
        warn(f"experiment {experiment.name!r} not tagged {EXPERIMENT_KIND_TAG}: {err}")


def experiment_id(client, uri: str, name: str) -> str:
    """The id of experiment ``name``, created (or restored) under the store lock."""
    with store_lock(uri):
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage != "active":
                client.restore_experiment(exp.experiment_id)
            _ensure_experiment_kind(client, exp)
            return exp.experiment_id
        location = None
        db = _sqlite_path(uri)
        if db is not None:  # artifacts next to the database, not in the job's cwd
            location = (db.resolve().parent / "mlartifacts").as_uri()
        try:
            return client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except Exception:  # created meanwhile by a process outside the lock (other URI form)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            _ensure_experiment_kind(client, exp)
            return exp.experiment_id


def quote(value: str) -> str:
    """``value`` as a string literal of MLflow's search filter syntax."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def find_runs(client, experiment_id: str, job_key: str) -> list:
    """Active runs of ``experiment_id`` tagged with ``job_key``, newest first."""
    from mlflow.entities import ViewType

    return retry(
        client.search_runs,
        [experiment_id],
        filter_string=f"tags.{JOB_KEY_TAG} = {quote(job_key)}",
        run_view_type=ViewType.ACTIVE_ONLY,
        order_by=["attributes.start_time DESC"],
    )


def dataset_inputs(record: Mapping[str, Any]) -> list:
    """MLflow ``DatasetInput`` entities of a record (:func:`~.records.dataset_input_specs`)."""
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = []
    for spec in dataset_input_specs(record):
        source = get_dataset_source_from_json(json.dumps({"uri": spec["uri"]}),
                                              source_type="local")
        meta = MetaDataset(source, name=spec["name"], digest=spec["digest"]).to_dict()
        entity = Dataset(
            name=meta["name"], digest=meta["digest"], source_type=meta["source_type"],
            source=meta["source"], profile=json.dumps(spec["profile"], sort_keys=True),
        )
        inputs.append(DatasetInput(entity, tags=[InputTag(DATASET_CONTEXT_TAG, spec["context"])]))
    return inputs


def dataset_inputs_or_none(record: Mapping[str, Any]) -> list:
    """:func:`dataset_inputs`, or none when they cannot be made: never fails a job."""
    try:
        return dataset_inputs(record)
    except Exception as err:
        warn(f"dataset inputs left out of the MLflow run: {err}")
        return []


def data_changed(run, inputs) -> bool:
    """True when ``run`` already holds one of ``inputs`` by name with another digest."""
    logged_inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    logged = {i.dataset.name: i.dataset.digest for i in logged_inputs or []}
    return any(logged.get(i.dataset.name, i.dataset.digest) != i.dataset.digest for i in inputs)


def log_inputs(client, run_id: str, inputs) -> None:
    if not inputs:
        return
    try:
        retry(client.log_inputs, run_id, datasets=inputs)
    except Exception as err:
        warn(f"dataset inputs left out of MLflow run {run_id}: {err}")


def metric_entities(metrics: Iterable[tuple[str, float, int]]):
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, v, now, s) for k, v, s in metrics]


def log_batch(client, run_id: str, *, params=(), metrics=(), tags=()) -> None:
    """log_batch in chunks within MLflow's limits (100 params, 100 tags, 1000 metrics a call)."""
    from mlflow.entities import Metric, Param, RunTag

    params = [Param(k, v) for k, v in params]
    metrics = [m if isinstance(m, Metric) else Metric(*m) for m in metrics]
    tags = [RunTag(k, v) for k, v in tags]
    chunks = max(math.ceil(len(params) / 100), math.ceil(len(tags) / 100),
                 math.ceil(len(metrics) / 1000), 1)
    for i in range(chunks):
        retry(
            client.log_batch,
            run_id,
            metrics=metrics[i * 1000 : (i + 1) * 1000],
            params=params[i * 100 : (i + 1) * 100],
            tags=tags[i * 100 : (i + 1) * 100],
        )
