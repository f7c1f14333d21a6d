"""sfbench.tracking against a real MLflow SQLite store in a temporary directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402

from sfbench.tracking import ensure_tracking_store, tracked  # noqa: E402

EXPERIMENT = "sfbench-test"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """One initialised store (creating the tables takes seconds), copied per test."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    ensure_tracking_store(f"sqlite:///{path}")
    return path


@pytest.fixture
def store(tmp_path, template_db, monkeypatch) -> str:
    db = tmp_path / "mlflow.db"
    shutil.copy(template_db, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("SFBENCH_CONFIG_HASH", raising=False)
    monkeypatch.chdir(tmp_path)
    return uri


def all_runs(uri: str, view=ViewType.ALL) -> list:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], run_view_type=view, max_results=10000)


def train_record(**overrides) -> dict:
    settings = {"method": "cfm", "dataset": "moons", "seed": 3, "lr": 0.002,
                "network": {"width": 64, "depth": 2}}
    settings.update(overrides)
    return {
        "command": "train",
        "settings": settings,
        "result": {"final_loss": 0.25, "loss_history": [[100, 0.9], [200, 0.5]],
                   "wall_seconds": 1.5, "device": "cpu"},
    }


def test_run_holds_params_metrics_tags_and_artifacts(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SFBENCH_CONFIG_HASH", "from-the-environment")  # only the CLI reads it
    artifact = tmp_path / "train.json"
    artifact.write_text("{}")
    with tracked(experiment=EXPERIMENT, job_key="train/moons/cfm/seed3", command="train",
                 config_hash="abc123") as t:
        t.log_record(train_record(), artifacts=[artifact])
    (run,) = all_runs(store)
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.002"
    assert run.data.params["network.width"] == "64"
    assert run.data.metrics["final_loss"] == 0.25
    tags = run.data.tags
    assert tags["job_key"] == "train/moons/cfm/seed3"
    assert (tags["method"], tags["dataset"], tags["seed"]) == ("cfm", "moons", "3")
    assert tags["config_hash"] == "abc123"
    assert "git_commit" in tags
    client = MlflowClient(tracking_uri=store)
    history = client.get_metric_history(run.info.run_id, "loss_history")
    assert [(m.step, m.value) for m in history] == [(100, 0.9), (200, 0.5)]
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["train.json"]


def test_rerun_reuses_the_run_of_the_job_key(store):
    for _ in range(2):
        with tracked(experiment=EXPERIMENT, job_key="k1", command="train") as t:
            t.log_record(train_record())
    runs = all_runs(store)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"


def test_changed_settings_replace_the_run_without_duplicates(store):
    for lr in (0.002, 0.001):
        with tracked(experiment=EXPERIMENT, job_key="k1", command="train") as t:
            t.log_record(train_record(lr=lr))
    active = all_runs(store, ViewType.ACTIVE_ONLY)
    assert len(active) == 1
    assert active[0].data.params["lr"] == "0.001"
    assert active[0].info.status == "FINISHED"


def test_exception_leaves_the_run_failed(store):
    with (
        pytest.raises(RuntimeError, match="boom"),
        tracked(experiment=EXPERIMENT, job_key="bad", command="train"),
    ):
        raise RuntimeError("boom")
    (run,) = all_runs(store)
    assert run.info.status == "FAILED"


def test_sigterm_leaves_the_run_killed(store, tmp_path):
    script = textwrap.dedent(
        """
        import time
        from sfbench.tracking import tracked
        with tracked(experiment="sfbench-test", job_key="slow", command="train"):
            open("started", "w").close()
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    deadline = time.time() + 60
    while not (tmp_path / "started").exists():
        assert proc.poll() is None, "the tracked process ended early"
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    (run,) = all_runs(store)
    assert run.info.status == "KILLED"


def test_child_runs_nest_under_the_parent_job(store):
    with tracked(experiment=EXPERIMENT, job_key="train/a", command="train") as t:
        t.log_record(train_record())
    for _ in range(2):  # the rerun reuses the sweep run and its cells
        with tracked(
            experiment=EXPERIMENT, job_key="sweep/a", command="sweep", parent_key="train/a"
        ) as t:
            t.log_record({"command": "sweep", "settings": {"method": "cfm"}, "result": {}})
            for steps in (2, 4):
                t.log_child(
                    f"euler/steps{steps}",
                    {"solver": "euler", "steps": steps, "method": "cfm"},
                    {"w2": 0.1 * steps, "nfe": steps},
                )
    runs = {r.data.tags["job_key"]: r for r in all_runs(store)}
    assert set(runs) == {"train/a", "sweep/a", "sweep/a/euler/steps2", "sweep/a/euler/steps4"}
    assert all(r.info.status == "FINISHED" for r in runs.values())
    assert runs["sweep/a"].data.tags["mlflow.parentRunId"] == runs["train/a"].info.run_id
    cell = runs["sweep/a/euler/steps4"]
    assert cell.data.tags["mlflow.parentRunId"] == runs["sweep/a"].info.run_id
    assert (cell.data.tags["solver"], cell.data.tags["steps"]) == ("euler", "4")
    assert cell.data.metrics["w2"] == pytest.approx(0.4)


def test_four_parallel_jobs_on_a_new_database_lose_no_run(tmp_path):
    """Four processes meet a database that does not exist yet; every run is recorded."""
    db = tmp_path / "fresh" / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    env.pop("SFBENCH_CONFIG_HASH", None)
    script = textwrap.dedent(
        """
        import sys, time
        from sfbench.tracking import tracked
        start = float(sys.argv[2])
        time.sleep(max(0.0, start - time.time()))  # all four enter at the same moment
        for j in range(3):
            key = f"job{sys.argv[1]}-{j}"
            with tracked(experiment="sfbench-test", job_key=key, command="train") as t:
                t.log_record({"command": "train", "settings": {"seed": j},
                              "result": {"loss": 1.0}})
        """
    )
    start = time.time() + 4.0  # after the four interpreters have imported mlflow
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(i), str(start)], env=env,
                         stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(errors)
    runs = all_runs(f"sqlite:///{db}")
    assert sorted(r.data.tags["job_key"] for r in runs) == sorted(
        f"job{i}-{j}" for i in range(4) for j in range(3)
    )
    assert {r.info.status for r in runs} == {"FINISHED"}


# --- experiment kind and dataset inputs -------------------------------------------------------

KIND_TAG = "mlflow.experimentKind"  # read by MLflow 3's experiment page (runs vs. traces view)


def experiment_tags(uri: str) -> dict[str, str]:
    return MlflowClient(tracking_uri=uri).get_experiment_by_name(EXPERIMENT).tags


def test_new_experiment_opens_on_its_runs(store):
    with tracked(experiment=EXPERIMENT, job_key="k1", command="train") as t:
        t.log_record(train_record())
    assert experiment_tags(store)[KIND_TAG] == "custom_model_development"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "custom_model_development"),  # made by an older sfbench or by hand, untagged
        ("no_inferred_type", "custom_model_development"),  # only inferred by the UI
        ("genai_development", "genai_development"),  # chosen by hand: kept
    ],
)
def test_existing_experiment_gets_a_kind_unless_one_was_chosen(store, before, after):
    tags = {} if before is None else {KIND_TAG: before}
    MlflowClient(tracking_uri=store).create_experiment(EXPERIMENT, tags=tags)
    with tracked(experiment=EXPERIMENT, job_key="k1", command="train"):
        pass
    assert experiment_tags(store)[KIND_TAG] == after


def write_data(path: Path, n_train: int = 40, n_test: int = 20, seed: int = 0) -> str:
    """An .npz like `sfbench data` writes; returns the md5 of its bytes."""
    import hashlib

    import numpy as np

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train=rng.normal(size=(n_train, 2)).astype("float32"),
             test=rng.normal(size=(n_test, 2)).astype("float32"))
    return hashlib.md5(path.read_bytes()).hexdigest()


def dataset_inputs(run) -> dict[str, tuple[str, str, dict, dict]]:
    """name -> (digest, context, source, profile) of a run's dataset inputs."""
    import json

    out = {}
    for i in run.inputs.dataset_inputs:
        context = {t.key: t.value for t in i.tags}.get("mlflow.data.context")
        out[i.dataset.name] = (i.dataset.digest, context, json.loads(i.dataset.source),
                               json.loads(i.dataset.profile))
    return out


def test_training_run_logs_its_train_split_as_a_dataset_input(store, tmp_path):
    digest = write_data(tmp_path / "data" / "moons.npz")
    record = train_record(data_file="data/moons.npz", n_train=40)
    with tracked(experiment=EXPERIMENT, job_key="train/moons", command="train") as t:
        t.log_record(record)
    (run,) = all_runs(store)
    inputs = dataset_inputs(run)
    assert set(inputs) == {"moons/train"}
    got_digest, context, source, profile = inputs["moons/train"]
    assert (got_digest, context) == (digest, "training")
    assert source == {"uri": str(tmp_path / "data" / "moons.npz")}
    assert run.inputs.dataset_inputs[0].dataset.source_type == "local"
    assert profile["split"] == "train" and profile["rows"] == 40


def test_evaluation_runs_and_their_children_log_the_test_split(store, tmp_path):
    digest = write_data(tmp_path / "d.npz")
    sweep = {"command": "sweep", "result": {"best_w2": 0.1},
             "settings": {"model": {"method": "cfm", "dataset": "moons"}, "data": "d.npz",
                          "n_test": 20}}
    with tracked(experiment=EXPERIMENT, job_key="sweep/moons", command="sweep") as t:
        t.log_child("nll", {"method": "cfm", "dataset": "moons", "data": "d.npz"}, {"nll": 1.0})
        t.log_record(sweep)
    runs = {r.data.tags["job_key"]: r for r in all_runs(store)}
    for key in ("sweep/moons", "sweep/moons/nll"):
        inputs = dataset_inputs(runs[key])
        assert set(inputs) == {"moons/test"}
        assert inputs["moons/test"][:2] == (digest, "evaluation")


def test_data_run_logs_both_splits_and_a_rerun_adds_none(store, tmp_path):
    digest = write_data(tmp_path / "moons.npz")
    record = {"command": "data", "settings": {"dataset": "moons", "n_train": 40, "n_test": 20},
              "result": {}, "outputs": ["moons.npz"]}
    for _ in range(2):
        with tracked(experiment=EXPERIMENT, job_key="data/moons", command="data") as t:
            t.log_record(record)
    (run,) = all_runs(store)
    inputs = dataset_inputs(run)
    assert {k: v[:2] for k, v in inputs.items()} == {
        "moons/train": (digest, "training"), "moons/test": (digest, "evaluation")}
    assert len(run.inputs.dataset_inputs) == 2


def test_changed_data_replaces_the_run(store, tmp_path):
    record = train_record(data_file="moons.npz")
    digests = []
    for seed in (0, 1):  # same settings, other bytes in the file
        digests.append(write_data(tmp_path / "moons.npz", seed=seed))
        with tracked(experiment=EXPERIMENT, job_key="train/moons", command="train") as t:
            t.log_record(record)
    (run,) = all_runs(store, ViewType.ACTIVE_ONLY)
    assert digests[0] != digests[1]
    assert [i.dataset.digest for i in run.inputs.dataset_inputs] == [digests[1]]


def test_a_missing_data_file_does_not_fail_the_job(store, capsys):
    with tracked(experiment=EXPERIMENT, job_key="train/moons", command="train") as t:
        t.log_record(train_record(data_file="gone/moons.npz"))
    (run,) = all_runs(store)
    assert run.info.status == "FINISHED"
    assert run.data.params["data_file"] == "gone/moons.npz"
    assert not run.inputs.dataset_inputs
    assert "gone/moons.npz" in capsys.readouterr().err


def test_cli_data_and_train_jobs_fill_the_dataset_column(tmp_path):
    """The records the CLI writes name their data the way the tracker reads it.

    The data job takes the tracking flags before the command (how the workflow
    passes them), the train job the experiment after it (the older form).
    """
    import hashlib

    db = tmp_path / "m.db"
    env = {k: v for k, v in os.environ.items()
           if k not in ("SFBENCH_MLFLOW_EXPERIMENT", "SFBENCH_CONFIG_HASH")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{db}", OMP_NUM_THREADS="1")
    jobs = [
        ("--mlflow-experiment", EXPERIMENT, "--config-hash", "cfg1",
         "data", "--dataset", "moons", "--n-train", "64", "--n-test", "32",
         "--out", "data/moons.npz", "--result", "data.json", "--job-key", "data/moons"),
        ("train", "--method", "cfm", "--dataset", "moons", "--data", "data/moons.npz",
         "--steps", "2", "--batch-size", "16", "--no-progress", "--out", "m.pt",
         "--result", "train.json", "--job-key", "train/moons/cfm/seed0",
         "--mlflow-experiment", EXPERIMENT),
    ]
    for job in jobs:
        proc = subprocess.run(
            [sys.executable, "-m", "sfbench", *job],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
    digest = hashlib.md5((tmp_path / "data" / "moons.npz").read_bytes()).hexdigest()
    runs = {r.data.tags["job_key"]: r for r in all_runs(f"sqlite:///{db}")}
    assert {k: v[:2] for k, v in dataset_inputs(runs["train/moons/cfm/seed0"]).items()} == {
        "moons/train": (digest, "training")}
    assert set(dataset_inputs(runs["data/moons"])) == {"moons/train", "moons/test"}
    assert runs["data/moons"].data.tags["config_hash"] == "cfg1"
    assert "config_hash" not in runs["train/moons/cfm/seed0"].data.tags
    assert experiment_tags(f"sqlite:///{db}")[KIND_TAG] == "custom_model_development"
