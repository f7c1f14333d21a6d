"""Promises 7 and 8: killed jobs never leave a run RUNNING; 16 jobs on a new store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import wait_for

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402

EXPERIMENT = "sfbench-reliability"

JOB = textwrap.dedent(
    """
    import sys, time
    from sfbench.tracking import tracked
    key, seconds = sys.argv[1], float(sys.argv[2])
    with tracked(experiment="sfbench-reliability", job_key=key, command="train") as t:
        open(f"{key}.started", "w").close()
        time.sleep(seconds)
        t.log_record({"command": "train", "settings": {"seed": 0}, "result": {"loss": 1.0}})
    """
)


def _job(tmp_path, key: str, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    env.pop("SFBENCH_CONFIG_HASH", None)
    return subprocess.Popen([sys.executable, "-c", JOB, key, str(seconds)], cwd=tmp_path,
                            env=env, stderr=subprocess.PIPE, text=True)


def _runs(tmp_path, view=ViewType.ACTIVE_ONLY) -> dict[str, list]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name(EXPERIMENT)
    by_key: dict[str, list] = {}
    for run in client.search_runs([exp.experiment_id], run_view_type=view, max_results=1000):
        by_key.setdefault(run.data.tags["job_key"], []).append(run.info.status)
    return by_key


def _started(tmp_path, key, proc):
    wait_for(lambda: (tmp_path / f"{key}.started").exists(), 120, f"{key} to start", proc)


@pytest.mark.slow
def test_sigterm_kills_the_run_and_sigkill_is_cleaned_up_by_the_next_job(tmp_path):
    """7. SIGTERM ends the run KILLED. After SIGKILL the run is RUNNING with no process;
    the next job of the experiment marks it FAILED, and a rerun of the killed job
    reuses its run: no run stays RUNNING and the job key has one run."""
    term = _job(tmp_path, "term", 60)
    _started(tmp_path, "term", term)
    term.send_signal(signal.SIGTERM)
    assert term.wait(timeout=60) == 128 + signal.SIGTERM
    assert _runs(tmp_path)["term"] == ["KILLED"]

    killed = _job(tmp_path, "killed", 60)
    _started(tmp_path, "killed", killed)
    killed.kill()
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert _runs(tmp_path)["killed"] == ["RUNNING"]  # nobody could close it

    other = _job(tmp_path, "other", 0)
    assert other.wait(timeout=120) == 0, other.stderr.read()
    runs = _runs(tmp_path)
    assert runs["killed"] == ["FAILED"]
    assert runs["other"] == ["FINISHED"]

    rerun = _job(tmp_path, "killed", 0)
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read()
    runs = _runs(tmp_path, ViewType.ALL)
    assert runs["killed"] == ["FINISHED"]  # the same run, closed by the rerun
    assert "RUNNING" not in {status for statuses in runs.values() for status in statuses}


@pytest.mark.slow
def test_sixteen_jobs_on_a_new_store_are_all_recorded_in_their_experiment(tmp_path):
    """8. 16 processes meet a tracking database that does not exist yet at the same
    moment: all exit 0 with no lock or schema error, every run is in the named
    experiment, and the Default experiment stays empty."""
    db = tmp_path / "new" / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    env.pop("SFBENCH_CONFIG_HASH", None)
    script = textwrap.dedent(
        """
        import sys, time
        from sfbench.tracking import tracked
        time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start together
        key = f"job{sys.argv[1]}"
        with tracked(experiment="sfbench-reliability", job_key=key, command="train") as t:
            t.log_record({"command": "train", "settings": {"seed": int(sys.argv[1])},
                          "result": {"loss": 1.0}})
        """
    )
    start = time.time() + 12.0  # after 16 interpreters have imported mlflow on 2 cores
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i), str(start)], env=env,
                              stderr=subprocess.PIPE, text=True) for i in range(16)]
    errors = [p.communicate(timeout=400)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, "\n".join(errors)
    for text in errors:
        assert "database is locked" not in text and "Traceback" not in text, text
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)
    assert sorted(r.data.tags["job_key"] for r in runs) == sorted(f"job{i}" for i in range(16))
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert client.search_runs(["0"], run_view_type=ViewType.ALL) == []  # Default experiment
