"""nll_record: the record of `sfbench evaluate --nll`, built by one function for both commands."""

from __future__ import annotations

import json

from sfbench.cli import main
from sfbench.commands.common import load_path_model
from sfbench.eval.likelihood import NLLOptions, nll_record
from sfbench.io import load_array


def test_nll_record_is_the_record_evaluate_writes(tmp_path):
    d = tmp_path / "d.npz"
    assert main(["data", "--dataset", "8gaussians", "--n-train", "20", "--n-test", "40",
                 "--out", str(d), "--result", str(tmp_path / "d.json")]) == 0
    oracle = ["--oracle", "--method", "cfm", "--dataset", "8gaussians"]
    assert main(["evaluate", "--nll", *oracle, "--data", str(d), "--n-test", "15",
                 "--rtol", "1e-3", "--atol", "1e-3", "--result", str(tmp_path / "e.json")]) == 0
    standalone = json.loads((tmp_path / "e.json").read_text())

    class Args:
        model, oracle, method, dataset = None, True, "cfm", "8gaussians"

    model, info = load_path_model(Args)
    test = load_array(str(d), "test")[:15]
    options = NLLOptions(rtol=1e-3, atol=1e-3)
    record = nll_record(model, info, test, options, data=str(d))
    timings = ("load_seconds", "nll_seconds")
    assert record["command"] == standalone["command"] == "evaluate"
    assert record["settings"] == standalone["settings"]
    assert {k: v for k, v in record["result"].items() if k not in timings} == {
        k: v for k, v in standalone["result"].items() if k not in timings}


def test_evaluate_names_a_device_it_cannot_use(tmp_path, capsys):
    d = tmp_path / "d.npz"
    assert main(["data", "--dataset", "8gaussians", "--n-train", "20", "--n-test", "40",
                 "--out", str(d), "--result", str(tmp_path / "d.json")]) == 0
    oracle = ["--oracle", "--method", "cfm", "--dataset", "8gaussians"]
    out = tmp_path / "e.json"
    assert main(["evaluate", "--nll", *oracle, "--data", str(d), "--device", "cuda",
                 "--result", str(out)]) == 1
    assert "oracle runs on the CPU" in capsys.readouterr().err
    assert not out.exists()
    assert main(["evaluate", "--nll", *oracle, "--data", str(d), "--n-test", "5",
                 "--rtol", "1e-3", "--atol", "1e-3", "--device", "auto",
                 "--result", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["nll"]["device"] == "cpu"
