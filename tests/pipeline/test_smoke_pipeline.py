"""The `smoke` preset end to end: Snakemake with 4 parallel jobs on a new MLflow
database, the report, the MLflow runs, and the DVC push / fresh clone / pull /
0-jobs round trip.

One pipeline run (a few minutes) is shared by the tests of this module.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_helpers import (
    REPO,
    copy_workflow,
    job_counts,
    load_preset,
    new_machine_env,
    run_snakemake,
)

pytestmark = pytest.mark.slow

PRESET = "smoke"


def _env(home: Path) -> dict:
    env = {
        k: v for k, v in new_machine_env().items()
        if k not in ("MLFLOW_TRACKING_URI", "SFBENCH_MLFLOW_EXPERIMENT", "SFBENCH_CONFIG_HASH")
    }
    env.update(
        HOME=str(home),  # the default DVC remote is ~/.cache/sfbench/dvc-remote
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-5000:]}"
    return proc.stdout


def _dvc(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("dvc")
    if not exe.exists() and not shutil.which("dvc"):
        pytest.skip("dvc is not installed (pip install -e '.[pipeline]')")
    return [str(exe) if exe.exists() else "dvc", *args]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A git + DVC repository in which the smoke preset has run with --cores 4."""
    root = tmp_path_factory.mktemp("smoke")
    home = root / "home"
    home.mkdir()
    env = _env(home)
    repo = copy_workflow(root / "repo")
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(REPO / name, repo / name)
    (repo / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy2(REPO / ".dvc" / name, repo / ".dvc" / name)
    shutil.copytree(REPO / "src" / "sfbench", repo / "src" / "sfbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("preset: default", f"preset: {PRESET}"))
    _run(["git", "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "workflow"], repo, env)

    proc = run_snakemake(repo, "--cores", "4", "--configfile", f"config/{PRESET}.yaml",
                         timeout=2400, env=env)
    assert proc.returncode == 0, proc.stdout[-8000:]
    return {"repo": repo, "env": env, "log": proc.stdout, "root": root}


def _image_models(cfg) -> list[str]:
    images = cfg["images"]
    return [f"{d}/{m}/seed{s}" for d in images["datasets"] for m in images["methods"]
            for s in images["seeds"]]


def test_every_job_ran(smoke):
    cfg = load_preset(PRESET)
    from sfbench.pipeline import JobPlan

    counts = job_counts(smoke["log"])
    assert counts == JobPlan(cfg).job_counts()  # tests/pipeline/test_plan.py checks the plan
    assert counts["classifier"] == counts["image_reference"] == counts["report"] == 1


def test_report_has_a_finite_row_for_every_method_and_solver(smoke):
    cfg = load_preset(PRESET)
    report = smoke["repo"] / "results" / "report"
    best = pd.read_csv(report / "tables" / "best_by_solver.csv")
    solvers = cfg["sampling"]["solvers"] + list(cfg["sampling"]["adaptive"])
    for dataset, method, solver in itertools.product(cfg["datasets"], cfg["methods"], solvers):
        rows = best[(best["dataset"] == dataset) & (best["method"] == method)
                    & (best["solver"] == solver)]
        # one best common-grid row and one best native-setting row (`native: true`)
        assert sorted(rows["cells"]) == ["common", "native"], (dataset, method, solver)
        values = rows[["w2_mean", "mmd_mean", "fd_mean", "nfe_mean"]].to_numpy(dtype=float)
        assert np.isfinite(values).all(), (dataset, method, solver, values)
    summary = pd.read_csv(report / "tables" / "summary.csv")
    summary = summary[summary["dataset"].isin(cfg["datasets"])]
    # the reflow stage's models are methods of the report too
    external = [e["name"] for e in cfg["external"]]
    assert sorted(summary["method"]) == sorted(cfg["methods"] + ["reflow", "distill"] + external)
    numbers = summary[["w2_mean", "fd_mean", "mmd_mean", "nfe_mean", "reference_w2"]]
    assert np.isfinite(numbers.to_numpy(dtype=float)).all()
    # an external model has no training of its own
    trained = ~summary["method"].isin(external)
    assert np.isfinite(summary.loc[trained, "train_seconds_mean"].to_numpy(dtype=float)).all()
    assert summary.loc[~trained, "train_seconds_mean"].isna().all()
    nll = summary.set_index("method")["nll_nats_mean"]
    assert np.isfinite(nll.drop("distill")).all() and np.isnan(nll["distill"])  # no ODE, no NLL
    cells = pd.read_csv(report / "tables" / "cells.csv")
    cells = cells[cells["dataset"].isin(cfg["datasets"]) & cells["method"].isin(cfg["methods"])]
    from sfbench.pipeline import JobPlan
    from sfbench.pipeline.settings import sweep_settings
    from sfbench.sweep.config import SweepConfig

    # the common cells and, with sampling.native, each solver's native column
    n_cells = len(SweepConfig.from_dict(sweep_settings(JobPlan(cfg), "main")).cells())
    assert n_cells >= len(cfg["sampling"]["solvers"]) * len(cfg["sampling"]["steps"]) + sum(
        map(len, cfg["sampling"]["adaptive"].values())
    )
    assert len(cells) == len(cfg["datasets"]) * len(cfg["methods"]) * len(cfg["seeds"]) * n_cells
    text = (report / "report.md").read_text()
    for needle in ("Protocol", "samples per cell", "test points", "rtol", "torch",
                   "Where the error comes from", "Straightness of the learned flows"):
        assert needle in text
    flows = pd.read_csv(report / "tables" / "flows.csv")
    # every swept model's flow is measured: each 2-D and image (dataset, method)
    image_cfg = cfg["images"]
    assert len(flows) == (len(cfg["datasets"]) * len(cfg["methods"]) + len(external)
                          + len(image_cfg["datasets"]) * len(image_cfg["methods"])
                          + 2 * len(cfg["reflow"]["datasets"]))
    # reflow straightens the 1-RF flow it was trained from (issue 6)
    flows = flows[flows["dataset"] == cfg["reflow"]["datasets"][0]].set_index("method")
    assert flows.loc["reflow", "straightness_mean"] < flows.loc["rectified_flow",
                                                                "straightness_mean"]


def test_report_has_the_image_sections(smoke):
    """Digits: FID / KID of every cell on both grids, the baseline verdict, bits/dim with its
    tolerances, the classifier's accuracy and hash, FID plots and sample grids."""
    cfg = load_preset(PRESET)
    images = cfg["images"]
    report = smoke["repo"] / "results" / "report"
    cells = pd.read_csv(report / "tables" / "cells.csv")
    cells = cells[cells["dataset"].isin(images["datasets"])]
    sampling = images["sampling"]
    per_model = len(sampling["solvers"]) * len(sampling["grids"]) * len(sampling["steps"]) + sum(
        map(len, sampling["adaptive"].values()))
    assert len(cells) == len(_image_models(cfg)) * per_model
    assert set(cells["grid"]) == {*sampling["grids"], "endpoints"}
    assert np.isfinite(cells[["fid", "kid", "nfe"]].to_numpy(dtype=float)).all()
    assert cells["w2"].isna().all()
    baseline = pd.read_csv(report / "tables" / "baseline.csv")
    assert sorted(baseline["method"]) == sorted(images["methods"])
    assert np.isfinite(baseline[["fid_mean", "baseline_fid", "reference_fid"]].to_numpy()).all()
    bits = pd.read_csv(report / "tables" / "bits.csv").set_index("method")
    assert np.isfinite(bits["nll_bits_per_dim_mean"]).all()
    assert np.isfinite(bits.loc["ddpm", "vlb_bits_per_dim_mean"])
    assert bits.loc["ddpm", "rtol"] == images["evaluation"]["nll"]["rtol"]
    text = (report / "report.md").read_text()
    assert "## FID against the Gaussian baseline" in text
    for method in images["methods"]:
        assert f"`digits` {method}: best FID" in text
        assert (report / "figures" / f"samples_digits_{method}.png").stat().st_size > 1000
    assert "digits classifier (trained by the pipeline" in text and "test accuracy" in text
    assert (report / "figures" / "fid_vs_nfe_digits.png").is_file()


def test_mlflow_holds_one_finished_run_per_job(smoke):
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    cfg = load_preset(PRESET)
    client = MlflowClient(tracking_uri=f"sqlite:///{smoke['repo'] / 'mlflow.db'}")
    exp = client.get_experiment_by_name(cfg["mlflow_experiment"])
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=50000)
    by_key: dict[str, list] = {}
    for run in runs:
        by_key.setdefault(run.data.tags.get("job_key"), []).append(run)

    models = [f"{d}/{m}/seed{s}" for d in cfg["datasets"] for m in cfg["methods"]
              for s in cfg["seeds"]]
    # every cell's key, from the sweep settings files the run wrote (native cells included)
    cells, image_cells, paired_cells, one_step_cells = (
        _cell_keys(smoke["repo"], name)
        for name in ("main", "images", "reflow", "reflow_one_step"))
    expected = {f"{stage}/{d}" for stage in ("data", "reference") for d in cfg["datasets"]}
    expected |= {f"{stage}/{m}" for stage in ("train", "sweep") for m in models}
    for e in cfg["external"]:  # swept (with the NLL of 2-D data), never trained
        expected |= {f"sweep/{e['dataset']}/{e['name']}/seed0/{c}" for c in cells + ["nll"]}
        expected.add(f"sweep/{e['dataset']}/{e['name']}/seed0")
    expected |= {f"sweep/{m}/{c}" for m in models for c in cells + ["nll"]}
    paired = [f"{d}/{m}/seed{s}" for d in cfg["reflow"]["datasets"] for m in ("reflow", "distill")
              for s in cfg["reflow"]["seeds"]]
    for m in paired:
        expected |= {f"pairs/{m}", f"train/{m}", f"sweep/{m}"}
        expected |= {f"sweep/{m}/{c}" for c in (one_step_cells if "/distill/" in m
                                                 else paired_cells)}
        if "/reflow/" in m:  # 2-D: the sweep computes the NLL (a distilled map has none)
            expected.add(f"sweep/{m}/nll")
    expected |= {f"decompose/{d}/{m}/seed{s}" for d in cfg["decompose"]["datasets"]
                 for m in cfg["methods"] + ["reflow", "distill"] for s in cfg["decompose"]["seeds"]}
    images = cfg["images"]
    expected |= {f"{stage}/{d}" for stage in ("data", "reference") for d in images["datasets"]}
    expected |= {f"{stage}/{m}" for stage in ("train", "sweep", "nll")
                 for m in _image_models(cfg)}
    expected |= {f"sweep/{m}/{c}" for m in _image_models(cfg) for c in image_cells}
    expected |= {"classifier/digits", "report"}
    assert set(by_key) == expected
    assert all(len(v) == 1 for v in by_key.values()), "a job has more than one run"
    assert {r.info.status for v in by_key.values() for r in v} == {"FINISHED"}

    train = by_key[f"train/{models[0]}"][0]
    sweep = by_key[f"sweep/{models[0]}"][0]
    cell = by_key[f"sweep/{models[0]}/{cells[0]}"][0]
    assert sweep.data.tags["mlflow.parentRunId"] == train.info.run_id
    assert cell.data.tags["mlflow.parentRunId"] == sweep.info.run_id
    for tag in ("method", "dataset", "seed", "git_commit", "config_hash", "job_key"):
        assert tag in train.data.tags, tag
    for tag in ("solver", "steps"):
        assert tag in cell.data.tags, tag
    assert "steps" in train.data.params and "w2" in cell.data.metrics
    report_artifacts = {a.path for a in client.list_artifacts(by_key["report"][0].info.run_id)}
    assert {"report.html", "report.md", "metrics.json"} <= report_artifacts


def _cell_keys(repo, name: str) -> list[str]:
    """The keys of the cells of the sweep settings file ``name`` that the run wrote."""
    from sfbench.sweep.config import SweepConfig

    path = repo / "resources" / "sweep_config" / f"{name}.yaml"
    return [cell.key for cell in SweepConfig.from_yaml(str(path)).cells()]


def test_report_renders_in_chromium(smoke):
    from sfbench.report.browser import check_in_chromium, find_chromium

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    result = check_in_chromium(smoke["repo"] / "results" / "report" / "report.html")
    assert result["images"] and all(i["ok"] for i in result["images"]), result
    assert result["tables"] and all(t["rows"] > 0 and t["filled"] for t in result["tables"])


def _shift_first(tree: dict, key: str, delta: float) -> float:
    """Add ``delta`` to the first number stored under ``key`` in a nested dict."""
    for k, v in tree.items():
        if k == key and isinstance(v, float | int):
            tree[k] = v + delta
            return v
        if isinstance(v, dict):
            found = _shift_first(v, key, delta)
            if found is not None:
                return found
    return None


def _artifacts(root: Path) -> dict[str, str]:
    """sha256 of every file a run wrote under results/, resources/ and checkpoints/."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for top in ("results", "resources", "checkpoints")
        for p in sorted((root / top).rglob("*"))
        if p.is_file() and p.name != ".gitignore"
    }


def test_dvc_push_clone_pull_restores_every_file(smoke):
    """After `dvc push`, a fresh clone, `dvc pull` and the documented sequence, Snakemake
    plans no job AND every file of the run is back, non-empty and byte-identical: "0 jobs"
    alone proves nothing, since an output whose consumers are up to date is not needed."""
    repo, env, root = smoke["repo"], smoke["env"], smoke["root"]
    before = _artifacts(repo)
    assert any(p.startswith("results/pairs/") for p in before)
    assert any(p.startswith("results/decompose/") for p in before)
    assert any(p.startswith("checkpoints/") for p in before)
    _run(_dvc("commit", "-f", "benchmark"), repo, env)
    _run(_dvc("push"), repo, env)
    # the documented commit: dvc.lock, and the report that git tracks
    _run(["git", "add", "dvc.lock", "results/report", ".gitignore"], repo, env)
    _run(["git", "commit", "-qm", "results"], repo, env)
    tracked = _run(["git", "ls-files", "results"], repo, env).split()
    assert "results/report/report.md" in tracked and "results/report/metrics.json" in tracked
    assert not [p for p in tracked if p.endswith((".pt", ".npz"))], tracked

    clone = root / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], root, env)
    assert (clone / "results" / "report" / "report.md").is_file()  # from git, before any pull
    _run(_dvc("pull"), clone, env)
    # The documented sequence: `snakemake --touch` once after a pull, then the run command.
    touch = run_snakemake(clone, "--touch", "--cores", "1", "--configfile",
                          f"config/{PRESET}.yaml", env=env)
    assert touch.returncode == 0, touch.stdout
    proc = run_snakemake(clone, "--configfile", f"config/{PRESET}.yaml", env=env)
    assert proc.returncode == 0, proc.stdout
    assert "Nothing to be done" in proc.stdout, proc.stdout
    after = _artifacts(clone)
    missing = sorted(set(before) - set(after))
    assert not missing, f"{len(missing)} files not restored, e.g. {missing[:5]}"
    changed = sorted(p for p in before if after[p] != before[p])
    assert not changed, f"{len(changed)} files differ after the round trip: {changed[:5]}"
    assert all((clone / p).stat().st_size > 0 for p in before)

    metrics = _run(_dvc("metrics", "show", "--json"), clone, env)
    assert '"w2"' in metrics
    plots_dir = root / "dvc_plots"
    _run(_dvc("plots", "show", "-o", str(plots_dir)), clone, env)
    html = (plots_dir / "index.html").read_text()
    assert "curves_csv" in html and "w2_vs_nfe" in html

    # `dvc metrics diff` between two commits: metrics.json is read from git at each
    # commit (cache: false), so the comparison's movement shows without any cache.
    shutil.rmtree(clone / ".dvc" / "cache")
    path = clone / "results" / "report" / "metrics.json"
    metrics = json.loads(path.read_text())
    old_value = _shift_first(metrics, "w2", 1.0)
    path.write_text(json.dumps(metrics, indent=2))
    _run(["git", "commit", "-qam", "metrics moved"], clone, env)
    diff = json.loads(_run(_dvc("metrics", "diff", "HEAD~1", "HEAD", "--json"), clone, env))
    moved = diff["results/report/metrics.json"]
    changes = [v for v in moved.values() if v.get("diff")]
    assert len(changes) == 1 and changes[0]["old"] == pytest.approx(old_value)
    assert changes[0]["diff"] == pytest.approx(1.0)


def test_report_states_where_it_came_from_and_check_sees_a_change(smoke):
    """The report names its commit, preset, config hash and machine; `sfbench report
    --check` passes on the checkout it was built from and fails once a module of the
    package or the preset file changes."""
    repo, env = smoke["repo"], smoke["env"]
    report = repo / "results" / "report"
    text = (report / "report.md").read_text()
    stamp = json.loads((report / "provenance.json").read_text())
    assert stamp["preset"] == PRESET and stamp["config_hash"] != "unknown"
    assert stamp["git_commit"][:12] in text and stamp["config_hash"] in text
    assert stamp["machine"]["cpu"] in text

    def check(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sfbench", "report", "--check", *extra],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    fresh = check()
    assert fresh.returncode == 0, fresh.stderr
    assert "is current" in fresh.stdout
    # the preset file: one setting changed
    preset = repo / "config" / f"{PRESET}.yaml"
    edited = repo / "edited.yaml"
    edited.write_text(preset.read_text().replace("n_samples: 200", "n_samples: 201", 1))
    stale = check("--preset-file", str(edited))
    assert stale.returncode == 1 and "is stale" in stale.stderr and "preset" in stale.stderr
    # the code: the report's fingerprint of one module no longer matches
    stamp["code"]["solvers/ode.py"] = "0" * 64
    (repo / "changed").mkdir()
    (repo / "changed" / "provenance.json").write_text(json.dumps(stamp))
    stale = check("--out-dir", "changed", "--preset-file", str(preset))
    assert stale.returncode == 1 and "code: solvers/ode.py changed" in stale.stderr


def test_snakemake_report_holds_the_comparison(smoke):
    """`snakemake --report` builds Snakemake's own report with sfbench's tables and
    figures in it (outputs marked with report(), captions and categories)."""
    repo, env = smoke["repo"], smoke["env"]
    out = repo / "snakemake_report.html"
    proc = run_snakemake(repo, "--report", str(out), "--configfile", f"config/{PRESET}.yaml",
                         env=env)
    assert proc.returncode == 0, proc.stdout[-3000:]
    html = out.read_text(errors="replace")
    for name in ("summary.csv", "best_by_solver.csv", "w2_vs_nfe_8gaussians.png",
                 "samples_8gaussians.png", "Tables", "Figures"):
        assert name in html, name
