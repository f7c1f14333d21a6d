"""External models in the job plan: swept and evaluated beside the trained ones, never
trained, on the sampling settings of their dataset's block."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pipeline_helpers import REPO, load_preset

from sfbench.pipeline import InvalidConfig, JobPlan, paths
from sfbench.pipeline.commands import nll_flags, sweep_flags
from sfbench.pipeline.validate import config_problems, validate_config

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SPEC = """kind: torch
network: flow.py:make
schedule: rectified_flow
prediction: velocity
time: data_at_1
sample_shape: [2]
"""


@pytest.fixture
def preset(tmp_path, monkeypatch) -> dict:
    """The smoke preset with a 2-D torch model and an image diffusers model (sources exist,
    relative to the working directory as Snakemake would see them)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "unet").mkdir(parents=True)
    (tmp_path / "models" / "flow.yaml").write_text(SPEC)
    (tmp_path / "models" / "flow.py").write_text("")
    (tmp_path / "models" / "unet" / "config.json").write_text("{}")
    cfg = copy.deepcopy(load_preset("smoke"))
    cfg["external"] = [
        {"name": "my_flow", "source": "models/flow.yaml", "dataset": "8gaussians",
         "kind": "torch"},
        {"name": "my_unet", "source": "models/unet", "dataset": "digits", "kind": "diffusers"},
    ]
    return cfg


def test_an_external_model_is_swept_and_evaluated_but_never_trained(preset):
    plan = JobPlan(preset)
    flow, unet = plan.block_models("external")
    assert (flow.dataset, flow.method, flow.seed, flow.external) == (
        "8gaussians", "my_flow", 0, True)
    outputs = plan.outputs()
    for model in (flow, unet):
        assert model.path(paths.MODEL) not in outputs  # no train job
        assert model.path(paths.TRAIN_RECORD) not in plan.report_inputs()["train"]
        assert model.path(paths.SWEEP) in outputs
        assert model.path(paths.NLL) in plan.report_inputs()["nll"]
        assert plan.model_inputs(model)["model"] == model.source
    # the jobs rerun when the spec, the network's file or a file of the directory changes
    assert plan.model_inputs(flow)["model_files"] == ["models/flow.yaml", "models/flow.py"]
    assert plan.model_inputs(unet)["model_files"] == ["models/unet/config.json"]
    # vector data: the sweep job computes the NLL; images: a job of its own, without the
    # VLB (that needs sfbench's own DDPM schedule)
    assert flow.nll_in_sweep and not unet.nll_in_sweep
    assert "--vlb" not in nll_flags(plan, unet)
    assert "--name my_unet" in nll_flags(plan, unet)
    assert "--name my_flow --dataset 8gaussians" in sweep_flags(plan, flow)
    # the sampling settings of the dataset's block, so it is compared on equal terms
    assert plan.sweep_config_name(flow) == "main"
    assert plan.sweep_config_name(unet) == "images"
    assert ("train", "my_flow") not in plan.job_configs()
    contents = plan.report_contents()
    assert {"my_flow", "my_unet"} <= set(contents.methods)
    assert "my_unet" in contents.image_methods and "my_flow" not in contents.image_methods
    assert not [m for m in plan.decompose_models() if m.external]


def test_a_preset_without_external_models_plans_the_same_jobs():
    cfg = load_preset("smoke")
    cfg.pop("external")
    with_empty = {**copy.deepcopy(cfg), "external": []}
    assert JobPlan(with_empty).jobs() == JobPlan(cfg).jobs()


def test_the_committed_presets_stay_valid_with_external_models(preset):
    assert config_problems(preset, SCHEMA) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(dataset="moons"), "external[0].dataset: 'moons' is not a dataset"),
        (lambda e: e.update(name="cfm"), "external[0].name: 'cfm' is already the name"),
        (lambda e: e.update(name="my-flow"), "external[0].name: 'my-flow' does not match"),
        (lambda e: e.update(source="models/none.yaml"),
         "external[0].source: models/none.yaml does not exist"),
        (lambda e: e.update(kind="diffusers"), "a diffusers model is a directory"),
        (lambda e: e.update(kind="onnx"), "external[0].kind: 'onnx' is not a valid name"),
        (lambda e: Path(e["source"]).write_text(SPEC + "predicts: eps\n"),
         "unknown key(s) predicts for kind torch"),
        (lambda e: Path(e["source"]).write_text("kind: diffusers\npath: unet\n"),
         "external[0].kind: 'torch', but models/flow.yaml declares kind 'diffusers'"),
    ],
)
def test_bad_external_entries_are_refused_naming_the_field(preset, edit, message):
    edit(preset["external"][0])
    with pytest.raises(InvalidConfig) as refused:
        validate_config(preset, SCHEMA)
    assert message in str(refused.value)


def test_two_external_models_of_one_name_are_refused(preset):
    preset["external"][1].update(name="my_flow")
    with pytest.raises(InvalidConfig, match=r"external\[1\].name: 'my_flow' is already"):
        validate_config(preset, SCHEMA)
