"""Installed plug-ins join every registry, the names the parser and the schema use, and the
help texts; a broken one stops with an error naming its distribution and entry.

Each check runs in a process of its own whose PYTHONPATH holds the installation, as a
user's environment would (the registries read entry points once per process).
"""

from __future__ import annotations

import json
import sys

import pytest
from plugin_helpers import REPO, plugin_env, run_python, write_distribution

REGISTRIES = """
import json
from sfbench.commands import names
from sfbench.data import DATASETS
from sfbench.eval.metrics import METRICS, get_metric, metrics_for
from sfbench.io import environment
from sfbench.methods import METHODS, get_method
from sfbench.models.registry import NETWORKS
from sfbench.pipeline import registries
from sfbench.solvers.registry import SOLVERS, get_solver, solver_table
registry = {"methods": METHODS, "datasets": DATASETS, "solvers": SOLVERS, "metrics": METRICS,
            "networks": NETWORKS}
print(json.dumps({
    "registries": {k: list(v) for k, v in registry.items()},
    "names": {k: list(getattr(names, k.upper())) for k in registry},
    "schema": registries.names(),
    "method": get_method("rf_logit_normal").describe(),
    "solver": [r for r in solver_table() if r["solver"] == "ralston"],
    "vector_metrics": [m.name for m in metrics_for("vector")],
    "metric_label": get_metric("sw2").label,
    "plugins": environment().get("plugins"),
    "builtin": get_solver("heun").name,
}))
"""


@pytest.fixture(scope="module")
def seen(example_plugin):
    proc = run_python(REGISTRIES, example_plugin)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_plugins_join_the_registries_after_the_builtins(seen):
    from sfbench.commands import names

    assert seen["registries"]["methods"] == [*names.BUILTIN_METHODS, "rf_logit_normal"]
    assert seen["registries"]["solvers"] == [*names.BUILTIN_SOLVERS, "ralston"]
    assert seen["registries"]["metrics"] == [*names.BUILTIN_METRICS, "sw2"]
    assert seen["registries"]["datasets"] == list(names.BUILTIN_DATASETS)
    assert seen["vector_metrics"] == ["w2", "mmd", "fd", "sw2"]
    assert seen["metric_label"] == "SW2" and seen["builtin"] == "heun"
    assert seen["method"]["t_density"] == "logit_normal_t"
    assert seen["solver"][0]["order"] == 2 and seen["solver"][0]["nfe_per_step"] == "2"
    assert seen["plugins"] == {"sfbench-plugin-example": "0.1.0"}


def test_help_names_and_schema_names_include_the_plugins(seen):
    # the parser's names come from metadata alone and must still equal the registries
    assert seen["names"] == seen["registries"]
    assert "rf_logit_normal" in seen["schema"]["methods"]
    assert "ralston" in seen["schema"]["fixed_solvers"]


def test_help_texts_list_the_plugins(example_plugin):
    import subprocess

    env = plugin_env(example_plugin)
    top = subprocess.run([sys.executable, "-m", "sfbench", "--help"], env=env,
                         capture_output=True, text=True)
    assert top.returncode == 0, top.stderr
    text = " ".join(top.stdout.split())  # argparse wraps the epilog
    assert ("installed plug-ins (docs/EXTENDING.md): methods rf_logit_normal; "
            "solvers ralston; metrics sw2") in text
    sweep = subprocess.run([sys.executable, "-X", "importtime", "-m", "sfbench", "sweep",
                            "--help"], env=env, capture_output=True, text=True)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert "edm_heun, ralston" in sweep.stdout and "kid, sw2" in sweep.stdout
    # naming the plug-ins imports neither them nor torch
    assert "sfbench_plugin_example" not in sweep.stderr and "| torch" not in sweep.stderr


def test_a_preset_naming_a_plugin_validates(example_plugin, tmp_path):
    import yaml

    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    cfg["methods"] = ["rectified_flow", "rf_logit_normal"]
    cfg["sampling"]["solvers"].append("ralston")
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml.safe_dump(cfg))
    check = ("import sys, yaml\nfrom sfbench.pipeline.validate import config_problems\n"
             "print(config_problems(yaml.safe_load(open(sys.argv[1])), sys.argv[2]))")
    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    with_plugin = run_python(check, example_plugin, args=(str(preset), schema))
    assert with_plugin.stdout.strip() == "[]", with_plugin.stderr[-2000:]
    without = run_python(check, args=(str(preset), schema))
    assert "'rf_logit_normal' is not a valid name" in without.stdout, without.stderr[-2000:]
    assert "'ralston' is not a valid name" in without.stdout


# --- broken plug-ins -------------------------------------------------------------------

READ_ALL = """
from sfbench.data import DATASETS
from sfbench.eval.metrics import METRICS
from sfbench.methods import METHODS
from sfbench.models.registry import NETWORKS
from sfbench.solvers import SOLVERS
for registry in (METHODS, SOLVERS, METRICS, DATASETS, NETWORKS):
    list(registry)
print("loaded")
"""

BROKEN = {
    "wrong_type": ({"sfbench.solvers": {"my_solver": "broken_mod:NOT_A_SPEC"}},
                   "expected a sfbench.solvers.registry.SolverSpec, got dict"),
    "shadows_builtin": ({"sfbench.methods": {"ddpm": "broken_mod:METHOD"}},
                        "'ddpm' is a built-in name of sfbench"),
    "import_error": ({"sfbench.metrics": {"my_metric": "broken_mod_missing:METRIC"}},
                     "cannot be loaded: ModuleNotFoundError: No module named "
                     "'broken_mod_missing'"),
    "name_mismatch": ({"sfbench.methods": {"other_name": "broken_mod:METHOD"}},
                      "the object is named 'my_rf'; its entry point must have that name"),
    "paired_method": ({"sfbench.methods": {"my_paired": "broken_mod:PAIRED"}},
                      "paired methods (reflow) are built in only"),
    "not_a_network": ({"sfbench.networks": {"my_net": "broken_mod:NOT_A_SPEC"}},
                      "expected a subclass of torch.nn.Module"),
}

BROKEN_MODULE = """
import dataclasses
from sfbench.methods import METHODS, PAIRED_METHODS
NOT_A_SPEC = {"name": "my_solver"}
METHOD = dataclasses.replace(METHODS["rectified_flow"], name="my_rf")
PAIRED = dataclasses.replace(PAIRED_METHODS["reflow"], name="my_paired")
"""


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plugin_names_its_distribution_and_entry(case, tmp_path):
    entry_points, message = BROKEN[case]
    site = write_distribution(tmp_path / "site", "broken-plugin", entry_points,
                              {"broken_mod.py": BROKEN_MODULE})
    proc = run_python(READ_ALL, site)
    assert proc.returncode != 0 and "loaded" not in proc.stdout
    (group, entries), = entry_points.items()
    (name, value), = entries.items()
    assert (f"PluginError: plug-in {name!r} = {value!r} (group {group}, from broken-plugin "
            f"0.0.1)") in proc.stderr, proc.stderr[-3000:]
    assert message in proc.stderr, proc.stderr[-3000:]


def test_two_plugins_with_one_name_are_refused(tmp_path):
    site = tmp_path / "site"
    for dist in ("first-plugin", "second-plugin"):
        write_distribution(site, dist, {"sfbench.methods": {"my_rf": "broken_mod:METHOD"}},
                           {"broken_mod.py": BROKEN_MODULE})
    proc = run_python(READ_ALL, site)
    assert "another installed plug-in already has the name 'my_rf'" in proc.stderr, proc.stderr


def test_the_cli_reports_a_broken_plugin_without_a_traceback(tmp_path):
    import subprocess

    site = write_distribution(tmp_path / "site", "broken-plugin",
                              {"sfbench.datasets": {"my_data": "broken_mod:NOT_A_SPEC"}},
                              {"broken_mod.py": BROKEN_MODULE})
    proc = subprocess.run([sys.executable, "-m", "sfbench", "data", "--dataset", "moons",
                           "--out", str(tmp_path / "d.npz"), "--result", str(tmp_path / "d.json")],
                          env=plugin_env(site),
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("sfbench data: error: plug-in 'my_data'"), proc.stderr
    assert "Traceback" not in proc.stderr


DATA_AND_NETWORK = """
import numpy as np
from torch import nn
from sfbench.data import Dataset

def _ring(n, rng):
    a = rng.uniform(0, 2 * np.pi, n)
    return np.stack([np.cos(a), np.sin(a)], axis=1)

RING = Dataset("ring", (2,), _ring, description="unit circle")

class Linear(nn.Module):
    def __init__(self, dim, hidden=8, time_embed_scale=1.0):
        super().__init__()
        self.sample_shape = (dim,)
        self.net = nn.Linear(dim + 1, dim)
"""

CHECK_DATA_AND_NETWORK = """
import sys, yaml
from sfbench.data import get_dataset
from sfbench.models.registry import build_network
from sfbench.pipeline.validate import config_problems
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["datasets"] = ["ring"]
for stage in ("images", "reflow", "decompose", "external"):  # the smoke preset's 8gaussians
    cfg.pop(stage)
cfg["train"]["network"] = {"kind": "linear", "hidden": 4}
print(config_problems(cfg, sys.argv[2]))
cfg["train"]["network"] = {"kind": "mlp", "hidden": 4}  # built-in kinds stay closed
print(config_problems(cfg, sys.argv[2]))
net = build_network({"kind": "linear", "dim": 2})
print(get_dataset("ring").sample(3, seed=0).shape, type(net).__name__)
"""


def test_dataset_and_network_plugins_reach_the_schema_and_the_builders(tmp_path):
    site = write_distribution(tmp_path / "site", "data-plugin",
                              {"sfbench.datasets": {"ring": "ring_mod:RING"},
                               "sfbench.networks": {"linear": "ring_mod:Linear"}},
                              {"ring_mod.py": DATA_AND_NETWORK})
    schema = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
    proc = run_python(CHECK_DATA_AND_NETWORK, site,
                      args=(str(REPO / "config" / "smoke.yaml"), schema))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with_plugin, builtin_kind, built = proc.stdout.splitlines()
    assert with_plugin == "[]"
    assert "train.network.hidden: unknown key" in builtin_kind
    assert built == "(3, 2) Linear"
