"""The record -> MLflow mapping of sfbench.tracking.records, without MLflow."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from sfbench.tracking.records import (
    MAX_PARAM_LENGTH,
    dataset_input_specs,
    record_datasets,
    record_metrics,
    record_params,
    record_tags,
)


def sweep_record(data: str) -> dict:
    return {
        "command": "sweep",
        "settings": {"model": {"method": "cfm", "dataset": "moons", "seed": 2},
                     "data": data, "n_test": 32, "solvers": ["euler", "heun"],
                     "note": "x" * (MAX_PARAM_LENGTH + 10), "flag": True},
        "result": {"best_w2": 0.25, "draws": 3, "ok": True, "label": "heun",
                   "loss_history": [[10, 0.9], [20, 0.5]], "cells": {"heun/4": {"nfe": 8}}},
    }


def test_params_metrics_and_tags_of_a_record(tmp_path):
    record = sweep_record(str(tmp_path / "d.npz"))
    params = record_params(record)
    assert params["model.method"] == "cfm" and params["solvers"] == '["euler", "heun"]'
    assert params["flag"] == "true" and len(params["note"]) == MAX_PARAM_LENGTH
    assert params["note"].endswith("...")
    # Numbers (not booleans, not strings) become metrics; [step, value] lists a series.
    assert sorted(record_metrics(record)) == [
        ("best_w2", 0.25, 0), ("cells.heun/4.nfe", 8.0, 0), ("draws", 3.0, 0),
        ("loss_history", 0.5, 20), ("loss_history", 0.9, 10)]
    assert record_tags(record) == {"method": "cfm", "dataset": "moons", "seed": "2"}


def test_dataset_inputs_name_split_digest_and_context(tmp_path, capsys):
    path = tmp_path / "data" / "moons.npz"
    path.parent.mkdir()
    np.savez(path, train=np.zeros((4, 2)), test=np.ones((2, 2)))
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    data_record = {"command": "data", "settings": {"dataset": "moons", "n_train": 4, "n_test": 2},
                   "outputs": [str(path)], "result": {}}
    assert [d["split"] for d in record_datasets(data_record)] == ["train", "test"]
    specs = dataset_input_specs(data_record)
    assert [(s["name"], s["digest"], s["context"]) for s in specs] == [
        ("moons/train", digest, "training"), ("moons/test", digest, "evaluation")]
    assert specs[0]["uri"] == str(path.resolve())
    assert specs[1]["profile"] == {"split": "test", "rows": 2, "bytes": path.stat().st_size,
                                   "file": str(path)}
    pairs = {"command": "train", "settings": {"pairs_file": str(path), "dataset": "moons"}}
    assert [(s["name"], s["context"]) for s in dataset_input_specs(pairs)] == [
        ("moons/pairs", "training")]
    # An unreadable file is left out with a warning, never an error.
    assert dataset_input_specs(sweep_record(str(tmp_path / "gone.npz"))) == []
    assert "gone.npz" in capsys.readouterr().err


def test_the_mapping_and_the_package_import_without_mlflow(tmp_path):
    path = tmp_path / "d.npz"
    path.write_bytes(b"0123")
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["mlflow"] = None  # any import of mlflow now raises ImportError
        import sfbench.tracking  # the package: its MLflow imports are inside functions
        from sfbench.tracking.records import dataset_input_specs, record_params
        record = {{"command": "evaluate", "settings": {{"data": {str(path)!r}, "seed": 1}}}}
        print(json.dumps([record_params(record), dataset_input_specs(record)]))
        assert sys.modules["mlflow"] is None
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    params, specs = json.loads(proc.stdout)
    assert params == {"data": str(path), "seed": "1"}
    assert [(s["name"], s["digest"]) for s in specs] == [
        ("d/test", hashlib.md5(b"0123").hexdigest())]
