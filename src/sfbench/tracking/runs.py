"""The run lifecycle: one MLflow run per job key, opened by :func:`tracked`, closed with a status.

A rerun of a job reuses the run with the same ``job_key``; when the job's
settings or the digest of its data file changed (MLflow params and dataset
inputs cannot change), the old run is deleted and a new one takes the key,
so an experiment never holds two active runs for one job; a run of another
``config_hash`` is replaced too. A job that raises ends FAILED, one stopped
by SIGTERM or Ctrl-C ends KILLED, otherwise FINISHED. There is no ambient
tracker: ``cli.main`` hands a command its tracker's :meth:`Tracker.log_child`
as ``args.log_child``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sfbench.tracking.identity import PROCESS_TAG, fail_stale_runs, git_state, process_identity
from sfbench.tracking.records import (
    JOB_KEY_TAG,
    PARENT_KEY_TAG,
    record_metrics,
    record_params,
    record_tags,
)
from sfbench.tracking.store import (
    client_for,
    data_changed,
    dataset_inputs_or_none,
    ensure_tracking_store,
    experiment_id,
    find_runs,
    log_batch,
    log_inputs,
    metric_entities,
    quote,
    retry,
    store_lock,
)

# Tags a child run (a sweep cell) takes from its parent's run.
INHERITED_TAGS = ("git_commit", "git_dirty", "config_hash", "mlflow.source.git.commit",
                  PROCESS_TAG)


class RunKilled(BaseException):
    """Raised inside :func:`tracked` when the process receives SIGTERM."""


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
        inputs = dataset_inputs_or_none(record)
        run = retry(self.client.get_run, self.run_id)
        existing = run.data.params
        if any(existing.get(k, v) != v for k, v in params.items()) or data_changed(run, inputs):
            # The settings or the data changed, and MLflow params and inputs cannot:
            # a fresh run takes the job key.
            retry(self.client.delete_run, self.run_id)
            self.run_id = retry(
                self.client.create_run, self.experiment_id, tags=self.tags
            ).info.run_id
            existing = {}
        tags = {**record_tags(record), "command": str(record.get("command", self.tags["command"]))}
        self.tags.update(tags)
        log_batch(
            self.client,
            self.run_id,
            params=[(k, v) for k, v in params.items() if k not in existing],
            metrics=metric_entities(record_metrics(record)),
            tags=tags.items(),
        )
        log_inputs(self.client, self.run_id, inputs)
        for path in artifacts:
            if path and Path(path).is_file():
                retry(self.client.log_artifact, self.run_id, str(path))

    def log_artifact(self, path: str | os.PathLike) -> None:
        retry(self.client.log_artifact, self.run_id, str(path))

    def _child_runs(self) -> dict[str, Any]:
        """The active child runs of this job by job key: one query for all of them."""
        from mlflow.entities import ViewType

        if self._children is None:
            runs = retry(
                self.client.search_runs,
                [self.experiment_id],
                filter_string=f"tags.{PARENT_KEY_TAG} = {quote(self.tags[JOB_KEY_TAG])}",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=50000,
            )
            self._children = {r.data.tags.get(JOB_KEY_TAG): r for r in runs}
        return self._children

    def log_child(
        self, key: str, settings: Mapping[str, Any], result: Mapping[str, Any]
    ) -> str:
        """A FINISHED nested run under this one (e.g. one sweep cell), reused by its key.

        The child's job key is ``<this job key>/<key>``; it carries the parent's
        tags (git commit, config hash), its own method/solver/steps/seed tags
        and, when ``settings`` name ``data``, that file's test split as input.
        """
        job_key = f"{self.tags[JOB_KEY_TAG]}/{key}"
        record = {"settings": dict(settings), "result": dict(result)}
        tags = {
            **{k: self.tags[k] for k in INHERITED_TAGS if k in self.tags},
            "command": self.tags["command"],
            **record_tags(record),
            JOB_KEY_TAG: job_key,
            PARENT_KEY_TAG: self.tags[JOB_KEY_TAG],
            "mlflow.parentRunId": self.run_id,
            "mlflow.runName": job_key,
        }
        params = record_params(record)
        inputs = dataset_inputs_or_none(record)
        old = self._child_runs().get(job_key)
        if (
            old is not None
            and all(old.data.params.get(k, v) == v for k, v in params.items())
            and not data_changed(old, inputs)
        ):
            run_id = old.info.run_id
            retry(self.client.update_run, run_id, status="RUNNING")
            params = {k: v for k, v in params.items() if k not in old.data.params}
        else:
            if old is not None:
                retry(self.client.delete_run, old.info.run_id)
            run_id = retry(self.client.create_run, self.experiment_id, tags=tags).info.run_id
        log_batch(
            self.client,
            run_id,
            params=params.items(),
            metrics=metric_entities(record_metrics(record)),
            tags=tags.items(),
        )
        log_inputs(self.client, run_id, inputs)
        retry(self.client.set_terminated, run_id, "FINISHED")
        return run_id


def _start_run(client, uri, experiment_id, job_key, tags) -> str:
    with store_lock(uri):  # two processes with one key must not both create a run
        runs = find_runs(client, experiment_id, job_key)
        for stale in runs[1:]:  # duplicates left by a manual copy or an older version
            retry(client.delete_run, stale.info.run_id)
        if runs and runs[0].data.tags.get("config_hash") == tags.get("config_hash"):
            run_id = runs[0].info.run_id
            retry(client.update_run, run_id, status="RUNNING")
        else:
            if runs:  # another configuration: a new run, not a second history in the old one
                retry(client.delete_run, runs[0].info.run_id)
            run_id = retry(client.create_run, experiment_id, tags=tags).info.run_id
    log_batch(client, run_id, tags=tags.items())
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


def run_tags(job_key: str, command: str, config_hash: str | None,
             parent_key: str | None) -> dict[str, str]:
    """The tags a job's run starts with: its identity, its code, its process, its config."""
    tags = {
        JOB_KEY_TAG: job_key,
        "command": command,
        **git_state(),
        "mlflow.runName": job_key,
        PROCESS_TAG: process_identity(),
    }
    if config_hash:
        tags["config_hash"] = config_hash
    if tags.get("git_commit", "unknown") != "unknown":
        tags["mlflow.source.git.commit"] = tags["git_commit"]
    if parent_key:
        tags[PARENT_KEY_TAG] = parent_key
    return tags


@contextlib.contextmanager
def tracked(
    *, experiment: str, job_key: str, command: str, parent_key: str | None = None,
    config_hash: str | None = None,
) -> Iterator[Tracker]:
    """Run the body as the MLflow run of ``job_key`` in ``experiment``.

    ``config_hash`` (``sfbench --config-hash``) tags the run; a run of the
    same key under another hash is replaced, not continued. Ends the run
    FINISHED, FAILED (an exception) or KILLED (SIGTERM or KeyboardInterrupt);
    exceptions propagate, SIGTERM exits with status 143.
    """
    if not job_key:
        raise ValueError("a tracked job needs a job key")
    uri = ensure_tracking_store()
    client = client_for(uri)
    exp_id = experiment_id(client, uri, experiment)
    tags = run_tags(job_key, command, config_hash, parent_key)
    if parent_key:
        parents = find_runs(client, exp_id, parent_key)
        if parents:
            tags["mlflow.parentRunId"] = parents[0].info.run_id
    fail_stale_runs(client, exp_id)  # runs of jobs killed by SIGKILL
    run_id = _start_run(client, uri, exp_id, job_key, tags)
    tracker = Tracker(client, uri, exp_id, run_id, tags)
    status = "FAILED"
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
        with contextlib.suppress(Exception) if status != "FINISHED" else contextlib.nullcontext():
            retry(client.set_terminated, tracker.run_id, status)
