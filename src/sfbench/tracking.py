"""MLflow adapter: one MLflow run per pipeline job, found again by its job key.

``cli.main`` wraps a command in :func:`tracked` when an experiment is named::

    with tracked(experiment=..., job_key=..., command=..., parent_key=...) as tracker:
        record = command.run(args)
        tracker.log_record(record, artifacts=[...])

What a run holds:

- params: every entry of ``record["settings"]``, flattened with dots;
- metrics: every number of ``record["result"]`` (a list of ``[step, value]``
  pairs, such as a loss history, becomes a metric series);
- tags: ``job_key`` (stable identity of the job), ``command``, ``method``,
  ``dataset``, ``solver``, ``steps``, ``seed`` (when the settings have them),
  ``git_commit``, ``git_dirty``, ``config_hash`` (``$SFBENCH_CONFIG_HASH``) and
  ``mlflow.parentRunId`` (the run of ``parent_key``, the training job, so the
  UI nests sampling and evaluation runs under their model);
- artifacts: the files passed to :meth:`Tracker.log_record`;
- dataset inputs (the runs table's Dataset column): the data file the job read
  (see :func:`record_datasets`), named ``<dataset>/<split>``, with the md5 of
  the file's bytes as digest, its path as a ``local`` source, the split, rows
  and size as profile and ``mlflow.data.context`` ``training`` (train split,
  reflow pairs) or ``evaluation`` (test split). A file that cannot be read is
  left out with a warning; it never fails the job.

The experiment is tagged ``mlflow.experimentKind = custom_model_development``
("Machine learning") when sfbench creates or first uses it, unless a kind was
chosen by hand, so MLflow 3 UIs that read the tag open it on its runs, not on
traces. (MLflow 3.17's UI ignores the tag: the view comes from its sidebar's
GenAI / Model training switch, or ``?workflowType=machine_learning`` in the
experiment's URL, which opens the runs table.)

The backend is ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` in the
working directory. A SQLite store is created under a file lock, so parallel
jobs that meet a new database do not race on its creation (the pipeline also
creates it in ``onstart`` with :func:`ensure_tracking_store`).

A rerun of a job reuses the run with the same ``job_key``; when the job's
settings or the digest of its data file changed (MLflow params and dataset
inputs cannot change), the old run is deleted and a new one takes the key,
so an experiment never holds two active runs for one job. A job that raises
ends FAILED, one stopped by SIGTERM or Ctrl-C ends KILLED, otherwise FINISHED.

A process killed with SIGKILL (or by the OOM killer, or a power cut) cannot
close its run. Every run is tagged ``sfbench.process`` (host, pid and the
process's start time, so a reused pid is not mistaken for it), and every job
that starts marks FAILED the RUNNING runs of its experiment whose process on
this host is gone (:func:`fail_stale_runs`); a rerun of the killed job then
reuses its run. No run stays RUNNING once any job of the experiment has run
again on that host.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
JOB_KEY_TAG = "job_key"
PARENT_KEY_TAG = "parent_key"
PROCESS_TAG = "sfbench.process"
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
DATASET_CONTEXT_TAG = "mlflow.data.context"  # mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT
SPLIT_CONTEXTS = {"train": "training", "pairs": "training", "test": "evaluation"}
RECORD_TAGS = ("method", "dataset", "solver", "steps", "seed")
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
_LOCKED_ERRORS = ("database is locked", "database table is locked")
_ACTIVE: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar(
    "sfbench_tracker", default=None
)


class RunKilled(BaseException):
    """Raised inside :func:`tracked` when the process receives SIGTERM."""


def active_tracker() -> Tracker | None:
    """The tracker of the enclosing :func:`tracked` block, if any (for nested runs)."""
    return _ACTIVE.get()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
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


def _retry(fn, *args, attempts: int = 8, **kwargs):
    """Call an MLflow client method, retrying while SQLite reports a lock."""
    for attempt in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # MlflowException wraps sqlalchemy's OperationalError
            if attempt == attempts - 1 or not any(s in str(err) for s in _LOCKED_ERRORS):
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def ensure_tracking_store(uri: str | None = None) -> str:
    """Create the tracking store (SQLite tables) once, under a lock; return its URI.

    Call before parallel jobs start: MLflow's SQLite store fails when two
    processes create a new database at the same moment.
    """
    uri = uri or tracking_uri()
    with _store_lock(uri):
        _client(uri).search_experiments(max_results=1)
    return uri


def _ensure_experiment_kind(client, experiment) -> None:
    """Tag ``experiment`` as a machine-learning one unless a kind was chosen by hand."""
    if experiment.tags.get(EXPERIMENT_KIND_TAG, "") not in INFERRED_KINDS:
        return
    try:  # a view setting: never a reason to fail a job
        _retry(client.set_experiment_tag, experiment.experiment_id,
               EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    except Exception as err:
        _warn(f"experiment {experiment.name!r} not tagged {EXPERIMENT_KIND_TAG}: {err}")


def _experiment_id(client, uri: str, name: str) -> str:
    with _store_lock(uri):
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


def _start_ticks(pid: int) -> str:
    """Start time of process ``pid`` in clock ticks since boot ('?' where /proc is absent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after "comm)"


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of a process, the value of the ``sfbench.process`` tag."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def process_gone(identity: str) -> bool:
    """True only when the process is known to have ended (never for another host's)."""
    try:
        host, pid, start = identity.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        pass
    return start != "?" and _start_ticks(pid) != start  # the pid now names another process


def fail_stale_runs(client, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs whose process has died without closing them."""
    runs = _retry(
        client.search_runs,
        [experiment_id],
        filter_string="attributes.status = 'RUNNING'",
        max_results=5000,
    )
    stale = [r.info.run_id for r in runs if process_gone(r.data.tags.get(PROCESS_TAG, ""))]
    for run_id in stale:
        _retry(client.set_tag, run_id, "sfbench.end", "process gone (killed without cleanup)")
        _retry(client.set_terminated, run_id, "FAILED")
    return stale


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def find_runs(client, experiment_id: str, job_key: str) -> list:
    """Active runs of ``experiment_id`` tagged with ``job_key``, newest first."""
    from mlflow.entities import ViewType

    return _retry(
        client.search_runs,
        [experiment_id],
        filter_string=f"tags.{JOB_KEY_TAG} = {_quote(job_key)}",
        run_view_type=ViewType.ACTIVE_ONLY,
        order_by=["attributes.start_time DESC"],
    )


def git_state(cwd: str | os.PathLike | None = None) -> dict[str, str]:
    """The commit checked out in ``cwd`` and whether tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"git_commit": "unknown"}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=30,
        )
        return {
            "git_commit": commit.stdout.strip(),
            "git_dirty": str(bool(dirty.stdout.strip())).lower(),
        }
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown"}


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


def _warn(message: str) -> None:
    print(f"sfbench: warning: {message}", file=sys.stderr)


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


def dataset_inputs(record: Mapping[str, Any]) -> list:
    """MLflow dataset inputs (``mlflow.entities.DatasetInput``) of :func:`record_datasets`.

    Name ``<dataset>/<split>``, digest :func:`file_digest`, a ``local`` source
    with the file's absolute path, profile {split, rows, bytes, file} and the
    context tag ``training`` or ``evaluation``. Files that cannot be read are
    left out with a warning; only the file is read (by the hash), not its arrays.
    """
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = record_tags(record).get("dataset")
    inputs = []
    for item in record_datasets(record):
        path = Path(item["path"])
        try:
            digest, size = file_digest(path), path.stat().st_size
        except OSError as err:
            _warn(f"dataset input {path} left out of the MLflow run: {err}")
            continue
        source = get_dataset_source_from_json(
            json.dumps({"uri": str(path.resolve())}), source_type="local"
        )
        name = f"{dataset or path.stem}/{item['split']}"
        meta = MetaDataset(source, name=name, digest=digest).to_dict()
        profile = {"split": item["split"], "bytes": size, "file": str(item["path"])}
        if item.get("rows") is not None:
            profile["rows"] = item["rows"]
        entity = Dataset(
            name=meta["name"], digest=meta["digest"], source_type=meta["source_type"],
            source=meta["source"], profile=json.dumps(profile, sort_keys=True),
        )
        context = InputTag(DATASET_CONTEXT_TAG, SPLIT_CONTEXTS[item["split"]])
        inputs.append(DatasetInput(entity, tags=[context]))
    return inputs


def _dataset_inputs_or_none(record: Mapping[str, Any]) -> list:
    """:func:`dataset_inputs`, or none when they cannot be made: never fails a job."""
    try:
        return dataset_inputs(record)
    except Exception as err:
        _warn(f"dataset inputs left out of the MLflow run: {err}")
        return []


def _data_changed(run, inputs) -> bool:
    """True when ``run`` already holds one of ``inputs`` by name with another digest."""
    logged_inputs = getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []
    logged = {i.dataset.name: i.dataset.digest for i in logged_inputs}
    return any(logged.get(i.dataset.name, i.dataset.digest) != i.dataset.digest for i in inputs)


def _log_inputs(client, run_id: str, inputs) -> None:
    if not inputs:
        return
    try:
        _retry(client.log_inputs, run_id, datasets=inputs)
    except Exception as err:
        _warn(f"dataset inputs left out of MLflow run {run_id}: {err}")


def _metric_entities(metrics: Iterable[tuple[str, float, int]]):
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, v, now, s) for k, v, s in metrics]


def _log_batch(client, run_id: str, *, params=(), metrics=(), tags=()) -> None:
    """log_batch in chunks within MLflow's limits (100 params, 100 tags, 1000 metrics a call)."""
    from mlflow.entities import Metric, Param, RunTag

    params = [Param(k, v) for k, v in params]
    metrics = [m if isinstance(m, Metric) else Metric(*m) for m in metrics]
    tags = [RunTag(k, v) for k, v in tags]
    chunks = max(math.ceil(len(params) / 100), math.ceil(len(tags) / 100),
                 math.ceil(len(metrics) / 1000), 1)
    for i in range(chunks):
        _retry(
            client.log_batch,
            run_id,
            metrics=metrics[i * 1000 : (i + 1) * 1000],
            params=params[i * 100 : (i + 1) * 100],
            tags=tags[i * 100 : (i + 1) * 100],
        )


class Tracker:
    """The MLflow run of one job. Obtained from :func:`tracked`."""

    def __init__(self, client, uri: str, experiment_id: str, run_id: str, tags: dict[str, str]):
        self.client, self.uri, self.experiment_id = client, uri, experiment_id
        self.run_id, self.tags = run_id, tags
        self._children: dict[str, Any] | None = None

    def log_record(self, record: Mapping[str, Any], artifacts: Iterable[str | os.PathLike] = ()):
        """Log a command's record: settings as params, numbers as metrics, files as artifacts,
        its data file as dataset input."""
        params = record_params(record)
        inputs = _dataset_inputs_or_none(record)
        run = _retry(self.client.get_run, self.run_id)
        existing = run.data.params
        if any(existing.get(k, v) != v for k, v in params.items()) or _data_changed(run, inputs):
            # The settings or the data changed, and MLflow params and inputs cannot:
            # a fresh run takes the job key.
            _retry(self.client.delete_run, self.run_id)
            self.run_id = _retry(
                self.client.create_run, self.experiment_id, tags=self.tags
            ).info.run_id
            existing = {}
        tags = {**record_tags(record), "command": str(record.get("command", self.tags["command"]))}
        self.tags.update(tags)
        _log_batch(
            self.client,
            self.run_id,
            params=[(k, v) for k, v in params.items() if k not in existing],
            metrics=_metric_entities(record_metrics(record)),
            tags=tags.items(),
        )
        _log_inputs(self.client, self.run_id, inputs)
        for path in artifacts:
            if path and Path(path).is_file():
                _retry(self.client.log_artifact, self.run_id, str(path))

    def log_artifact(self, path: str | os.PathLike) -> None:
        _retry(self.client.log_artifact, self.run_id, str(path))

    def log_child(
        self, key: str, settings: Mapping[str, Any], result: Mapping[str, Any]
    ) -> str:
        """A FINISHED nested run under this one (e.g. one sweep cell), reused by its key.

        The child's job key is ``<this job key>/<key>``; it carries the parent's
        tags (git commit, config hash), its own method/solver/steps/seed tags
        and, when ``settings`` name ``data``, that file's test split as input.
        """
        from mlflow.entities import ViewType

        if self._children is None:  # one query for every child of this run
            runs = _retry(
                self.client.search_runs,
                [self.experiment_id],
                filter_string=f"tags.{PARENT_KEY_TAG} = {_quote(self.tags[JOB_KEY_TAG])}",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=50000,
            )
            self._children = {r.data.tags.get(JOB_KEY_TAG): r for r in runs}
        job_key = f"{self.tags[JOB_KEY_TAG]}/{key}"
        record = {"settings": dict(settings), "result": dict(result)}
        inherited = (
            "git_commit", "git_dirty", "config_hash", "mlflow.source.git.commit", PROCESS_TAG
        )
        tags = {
            **{k: self.tags[k] for k in inherited if k in self.tags},
            "command": self.tags["command"],
            **record_tags(record),
            JOB_KEY_TAG: job_key,
            PARENT_KEY_TAG: self.tags[JOB_KEY_TAG],
            "mlflow.parentRunId": self.run_id,
            "mlflow.runName": job_key,
        }
        params = record_params(record)
        inputs = _dataset_inputs_or_none(record)
        old = self._children.get(job_key)
        if (
            old is not None
            and all(old.data.params.get(k, v) == v for k, v in params.items())
            and not _data_changed(old, inputs)
        ):
            run_id = old.info.run_id
            _retry(self.client.update_run, run_id, status="RUNNING")
            params = {k: v for k, v in params.items() if k not in old.data.params}
        else:
            if old is not None:
                _retry(self.client.delete_run, old.info.run_id)
            run_id = _retry(self.client.create_run, self.experiment_id, tags=tags).info.run_id
        _log_batch(
            self.client,
            run_id,
            params=params.items(),
            metrics=_metric_entities(record_metrics(record)),
            tags=tags.items(),
        )
        _log_inputs(self.client, run_id, inputs)
        _retry(self.client.set_terminated, run_id, "FINISHED")
        return run_id


def _start_run(client, uri, experiment_id, job_key, tags) -> str:
    with _store_lock(uri):  # two processes with one key must not both create a run
        runs = find_runs(client, experiment_id, job_key)
        for stale in runs[1:]:  # duplicates left by a manual copy or an older version
            _retry(client.delete_run, stale.info.run_id)
        if runs and runs[0].data.tags.get("config_hash") == tags.get("config_hash"):
            run_id = runs[0].info.run_id
            _retry(client.update_run, run_id, status="RUNNING")
        else:
            if runs:  # another configuration: a new run, not a second history in the old one
                _retry(client.delete_run, runs[0].info.run_id)
            run_id = _retry(client.create_run, experiment_id, tags=tags).info.run_id
    _log_batch(client, run_id, tags=tags.items())
    return run_id


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`RunKilled` so the run can be closed as KILLED."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise RunKilled(f"received signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def tracked(
    *, experiment: str, job_key: str, command: str, parent_key: str | None = None
) -> Iterator[Tracker]:
    """Run the body as the MLflow run of ``job_key`` in ``experiment``.

    Ends the run FINISHED, FAILED (an exception) or KILLED (SIGTERM or
    KeyboardInterrupt); exceptions propagate, SIGTERM exits with status 143.
    """
    if not job_key:
        raise ValueError("a tracked job needs a job key")
    uri = ensure_tracking_store()
    client = _client(uri)
    experiment_id = _experiment_id(client, uri, experiment)
    tags = {
        JOB_KEY_TAG: job_key,
        "command": command,
        **git_state(),
        "mlflow.runName": job_key,
        PROCESS_TAG: process_identity(),
    }
    if os.environ.get("SFBENCH_CONFIG_HASH"):
        tags["config_hash"] = os.environ["SFBENCH_CONFIG_HASH"]
    if tags.get("git_commit", "unknown") != "unknown":
        tags["mlflow.source.git.commit"] = tags["git_commit"]
    if parent_key:
        tags[PARENT_KEY_TAG] = parent_key
        parents = find_runs(client, experiment_id, parent_key)
        if parents:
            tags["mlflow.parentRunId"] = parents[0].info.run_id
    fail_stale_runs(client, experiment_id)  # runs of jobs killed by SIGKILL
    run_id = _start_run(client, uri, experiment_id, job_key, tags)
    tracker = Tracker(client, uri, experiment_id, run_id, tags)
    status = "FAILED"
    token = _ACTIVE.set(tracker)
    try:
        with _sigterm_raises():
            yield tracker
        status = "FINISHED"
    except RunKilled:
        status = "KILLED"
        raise SystemExit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _ACTIVE.reset(token)
        with contextlib.suppress(Exception) if status != "FINISHED" else contextlib.nullcontext():
            _retry(client.set_terminated, tracker.run_id, status)
