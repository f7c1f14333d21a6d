"""MLflow adapter: one MLflow run per pipeline job, found again by its job key.

``cli.main`` wraps a command in :func:`tracked` when an experiment is named::

    with tracked(experiment=..., job_key=..., command=..., parent_key=...,
                 config_hash=...) as tracker:
        args.log_child = tracker.log_child      # a command's nested runs (sweep cells)
        record = command.run(args)
        tracker.log_record(record, artifacts=[...])

What a run holds: params, metrics, tags and dataset inputs mapped from the
record (:mod:`~sfbench.tracking.records`, which imports no MLflow); the
tags ``job_key`` (stable identity of the job), ``command``, ``git_commit``,
``git_dirty``, ``config_hash`` (``sfbench --config-hash``), ``sfbench.process``
and ``mlflow.parentRunId`` (the run of ``parent_key``, the training job, so
the UI nests sampling and evaluation runs under their model); the files
passed to :meth:`Tracker.log_record` as artifacts.

The package's parts:

- :mod:`~sfbench.tracking.records`: record -> params, metrics, tags, dataset inputs;
- :mod:`~sfbench.tracking.store`: the store's URI, its creation under a file
  lock, retries on SQLite locks, the experiment and its kind tag, batched writes;
- :mod:`~sfbench.tracking.identity`: git state, process identity, stale runs
  of killed processes marked FAILED;
- :mod:`~sfbench.tracking.runs`: :func:`tracked` and :class:`Tracker`, the
  lifecycle of a job's run (reuse by key, FINISHED / FAILED / KILLED).
"""

from sfbench.tracking.identity import (
    PROCESS_TAG,
    fail_stale_runs,
    git_state,
    process_gone,
    process_identity,
)
from sfbench.tracking.records import (
    JOB_KEY_TAG,
    PARENT_KEY_TAG,
    file_digest,
    flatten,
    record_datasets,
    record_metrics,
    record_params,
    record_tags,
)
from sfbench.tracking.runs import RunKilled, Tracker, tracked
from sfbench.tracking.store import (
    DEFAULT_TRACKING_URI,
    dataset_inputs,
    ensure_tracking_store,
    find_runs,
    tracking_uri,
)

__all__ = [
    "DEFAULT_TRACKING_URI", "JOB_KEY_TAG", "PARENT_KEY_TAG", "PROCESS_TAG", "RunKilled",
    "Tracker", "dataset_inputs", "ensure_tracking_store", "fail_stale_runs", "file_digest",
    "find_runs", "flatten", "git_state", "process_gone", "process_identity", "record_datasets",
    "record_metrics", "record_params", "record_tags", "tracked", "tracking_uri",
]
