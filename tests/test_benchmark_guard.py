"""The regression guard of benchmarks/: direction-aware comparison of committed and fresh ratios."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ is not an installed package; load its guard module from the file.
_spec = importlib.util.spec_from_file_location("benchmarks_guard", REPO / "benchmarks" / "guard.py")
guard = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = guard  # dataclasses look their module up there
_spec.loader.exec_module(guard)


def write_results(directory: Path, **ratios) -> Path:
    """One result file per ratio: name=(value, better)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, (value, better) in ratios.items():
        record = {"benchmark": name, "ratios": {name: {"value": value, "better": better}}}
        (directory / f"{name}.json").write_text(json.dumps(record))
    return directory


def test_a_speedup_that_fell_and_an_overhead_that_rose_are_regressions(tmp_path):
    committed = write_results(tmp_path / "a", speedup=(5.0, "higher"), overhead=(1.03, "lower"),
                              steady=(2.0, "higher"))
    current = write_results(tmp_path / "b", speedup=(3.9, "higher"), overhead=(1.30, "lower"),
                            steady=(1.7, "higher"))
    rows, unmatched = guard.check(committed, current)
    bad = {c.name: c.change for c in guard.regressions(rows)}
    assert set(bad) == {"speedup", "overhead"}  # steady fell 15 %: within the 20 % tolerance
    assert bad["speedup"] == pytest.approx(0.22)
    assert bad["overhead"] == pytest.approx(0.27 / 1.03)
    assert unmatched == []


def test_improvements_in_either_direction_are_not_regressions(tmp_path):
    committed = write_results(tmp_path / "a", speedup=(2.0, "higher"), overhead=(1.10, "lower"))
    current = write_results(tmp_path / "b", speedup=(4.0, "higher"), overhead=(1.00, "lower"))
    rows, _ = guard.check(committed, current)
    assert guard.regressions(rows) == []
    assert all(c.change < 0 for c in rows)


def test_ratios_on_one_side_only_are_reported_not_compared(tmp_path):
    committed = write_results(tmp_path / "a", old=(2.0, "higher"), both=(1.0, "lower"))
    current = write_results(tmp_path / "b", new=(2.0, "higher"), both=(1.0, "lower"))
    rows, unmatched = guard.check(committed, current)
    assert [c.name for c in rows] == ["both"]
    assert unmatched == ["new", "old"]


def test_a_ratio_without_a_direction_is_rejected(tmp_path):
    bad = tmp_path / "a"
    bad.mkdir()
    (bad / "x.json").write_text(json.dumps({"ratios": {"x": {"value": 1.0}}}))
    with pytest.raises(ValueError, match="'better'"):
        guard.load_ratios(bad)


def test_the_check_command_exits_nonzero_and_names_the_regression(tmp_path):
    committed = write_results(tmp_path / "a", speedup=(5.0, "higher"), overhead=(1.03, "lower"))
    current = write_results(tmp_path / "b", speedup=(2.0, "higher"), overhead=(1.04, "lower"))
    cmd = [sys.executable, "-m", "benchmarks", "--results-dir", str(committed), "check",
           "--results", str(current)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "speedup: 5 -> 2 (60% worse" in proc.stderr
    assert "overhead" not in proc.stderr  # 1 % worse: within tolerance
    ok = subprocess.run(cmd[:-1] + [str(committed)], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_the_check_command_reports_a_missing_results_directory(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--results-dir", str(tmp_path / "nowhere"), "check",
         "--results", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_the_committed_results_load_with_one_name_per_ratio():
    # `python -m benchmarks check` reads every committed result file; a ratio
    # name written by two files (say a CPU and a GPU run) would stop it.
    ratios = guard.load_ratios(REPO / "benchmarks" / "results")
    assert "train_step_overhead" in ratios
    assert all(entry["better"] in ("higher", "lower") for entry in ratios.values())
