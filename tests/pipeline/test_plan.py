"""The job plan of sfbench.pipeline, without Snakemake: models, jobs, settings, checks."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import PurePosixPath

import pytest
import yaml
from pipeline_helpers import REPO, load_preset

from sfbench.methods import METHODS, PAIRED_METHODS
from sfbench.pipeline import REFLOW_CHAIN, InvalidConfig, JobPlan, dvc, paths, registries
from sfbench.pipeline.commands import job_key
from sfbench.pipeline.settings import config_text, job_config, sweep_settings, train_settings
from sfbench.pipeline.validate import config_problems, validate_config

PRESETS = sorted(p.stem for p in (REPO / "config").glob("*.yaml"))
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
#: The keys of a sweep config (CONTRACTS.md item 6: SweepConfig refuses unknown keys).
SWEEP_KEYS = {"solvers", "steps", "grids", "adaptive", "n_samples", "seed", "held_out_seeds",
              "native", "device", "trajectory", "straightness", "nll", "fid"}


@pytest.fixture(params=PRESETS)
def preset(request) -> dict:
    return load_preset(request.param)


def _size(block: dict) -> int:
    return len(block["datasets"]) * len(block["methods"]) * len(block["seeds"])


def test_every_block_trains_its_grid_of_models(preset):
    plan = JobPlan(preset)
    assert len(plan.block_models("main")) == _size(preset)
    assert len(plan.block_models("images")) == (_size(preset["images"]) if "images" in preset
                                                else 0)
    reflow = preset.get("reflow")
    n_chain = len(reflow["datasets"]) * len(reflow["seeds"]) if reflow else 0
    assert len(plan.block_models("reflow")) == n_chain * len(PAIRED_METHODS)
    models = plan.models()
    assert len(set(models)) == len(models)


def test_paired_models_are_exactly_the_reflow_block_and_train_on_pairs(preset):
    plan = JobPlan(preset)
    for model in plan.models():
        assert model.needs_pairs == (model.block == "reflow") == (model.method in PAIRED_METHODS)
        inputs = plan.train_inputs(model)
        assert ("pairs" in inputs) == model.needs_pairs and ("data" in inputs) != model.needs_pairs
    pair_jobs = [job for job in plan.jobs() if job.rule == "pairs"]
    assert len(pair_jobs) == len(plan.block_models("reflow"))


def test_the_reflow_chain_starts_from_a_data_trained_model_with_fresh_noise_per_link():
    plan = JobPlan(load_preset("default"))
    assert REFLOW_CHAIN[0] in METHODS and list(REFLOW_CHAIN[1:]) == list(PAIRED_METHODS)
    seeds = {}
    for model in plan.block_models("reflow"):
        teacher = plan.teacher(model)
        assert (teacher.dataset, teacher.seed) == (model.dataset, model.seed)
        assert REFLOW_CHAIN.index(teacher.method) == REFLOW_CHAIN.index(model.method) - 1
        assert plan.pairs_inputs(model) == {"model": teacher.path(paths.MODEL)}
        seeds.setdefault((model.dataset, model.seed), set()).add(plan.pair_seed(model))
    assert all(len(links) == len(PAIRED_METHODS) for links in seeds.values())


def test_a_new_paired_method_needs_an_entry_in_methods_only(monkeypatch):
    """A third link (a 3-RF on pairs of the 2-RF) declared in sfbench.methods alone gets its
    pairs job from its teacher, its training, sweep, NLL and report tables."""
    import dataclasses

    third = dataclasses.replace(PAIRED_METHODS["reflow"], name="reflow3", teacher="reflow")
    monkeypatch.setitem(PAIRED_METHODS, "reflow3", third)
    plan = JobPlan(load_preset("default"))
    new = [m for m in plan.block_models("reflow") if m.method == "reflow3"]
    assert new and all(plan.teacher(m).method == "reflow" for m in new)
    outputs = {f for job in plan.jobs() for f in job.outputs}
    for model in new:
        for pattern in (paths.PAIRS, paths.MODEL, paths.SWEEP, paths.NLL):
            assert model.path(pattern) in outputs
        assert plan.pairs_inputs(model) == {"model": plan.teacher(model).path(paths.MODEL)}
    assert "tables/grid_reflow3.csv" in plan.report_contents().tables()
    assert len({plan.pair_seed(m) for m in plan.block_models("reflow")
                if (m.dataset, m.seed) == (new[0].dataset, new[0].seed)}) == len(PAIRED_METHODS)


def test_one_step_models_have_no_nll_and_every_other_model_exactly_one(preset):
    plan = JobPlan(preset)
    writers = Counter(f for job in plan.jobs() for f in job.outputs)
    for model in plan.models():
        assert writers[model.path(paths.NLL)] == (0 if model.one_step else 1)
        nll_rule = next((j.rule for j in plan.jobs() if model.path(paths.NLL) in j.outputs), None)
        if not model.one_step:  # vector data: in the sweep job; images: a job of its own
            assert nll_rule == ("sweep" if model.kind == "vector" else "nll")
    assert all(m.has_nll for m in plan.models() if m.path(paths.NLL) in plan.report_inputs()["nll"])


def test_every_output_has_one_job_and_the_report_reads_only_planned_files(preset):
    plan = JobPlan(preset)
    outputs = plan.outputs()
    assert len(outputs) == len(set(outputs))
    planned = set(outputs)
    for kind, files in plan.report_inputs().items():
        assert set(files) <= planned, kind


def test_report_files_come_from_the_manifest_and_the_metric_registry(preset):
    plan = JobPlan(preset)
    files = set(plan.report_files())
    for dataset in preset["datasets"]:  # vector data: the Frechet distance is `fd`
        assert f"results/report/figures/fd_vs_nfe_{dataset}.png" in files
        assert f"results/report/figures/fid_vs_nfe_{dataset}.png" not in files
    methods = {m.method for m in plan.models()}
    assert {f"results/report/tables/grid_{m}.csv" for m in methods} <= files
    assert set(plan.report_documents()) | set(plan.report_files("tables")) | set(
        plan.report_files("figures")) == files


def test_sweep_configs_have_the_contract_keys_and_the_blocks_settings(preset):
    plan = JobPlan(preset)
    names = [n for kind, n in plan.job_configs() if kind == "sweep"]
    for name in names:
        settings = sweep_settings(plan, name)
        assert set(settings) == SWEEP_KEYS, name
        assert yaml.safe_load(config_text("sweep", settings)) == settings  # 1e-05 stays a float
    main = sweep_settings(plan, "main")
    assert main["nll"] == preset["evaluation"]["nll"] and main["fid"] is None
    assert main["solvers"] == preset["sampling"]["solvers"]
    # the noise protocol reaches every sweep of a block, reflow's and one-step ones included
    for name in names:
        block = preset["images"] if name == "images" else preset
        assert sweep_settings(plan, name)["held_out_seeds"] == block["sampling"].get(
            "held_out_seeds", []), name
        assert sweep_settings(plan, name)["native"] == block["sampling"].get("native", False)
    if "images" in preset:
        images = sweep_settings(plan, "images")
        assert images["nll"] is None and images["trajectory"] is None  # NLL: its own job
        assert images["fid"]["kid_subsets"] > 0
    if "reflow" in preset:
        assert sweep_settings(plan, "reflow")["solvers"] == preset["reflow"]["sweep_solvers"]
        one_step = sweep_settings(plan, "reflow_one_step")
        assert (one_step["solvers"], one_step["steps"], one_step["adaptive"]) == (
            ["euler"], [1], {})
        assert one_step["nll"] is None


def test_the_noise_floor_takes_as_many_draws_as_a_figure_has_held_out_values():
    from sfbench.pipeline.commands import reference_flags
    from sfbench.pipeline.settings import floor_draws

    cfg = load_preset("default")
    plan = JobPlan(cfg)
    n = len(cfg["seeds"]) * len(cfg["sampling"]["held_out_seeds"])
    assert n > 3 and floor_draws(plan, "moons") == n
    assert f"--draws {n}" in reference_flags(plan, "moons")
    assert floor_draws(plan, "digits") == cfg["images"]["evaluation"]["reference_draws"]
    cfg = copy.deepcopy(cfg)
    cfg["sampling"]["held_out_seeds"] = []
    cfg["images"]["evaluation"].pop("reference_draws")
    assert floor_draws(JobPlan(cfg), "moons") == 3  # no held-out seeds: as before
    assert floor_draws(JobPlan(cfg), "digits") == 3  # 1 seed x 1 held-out: never below 3
    cfg["images"]["sampling"]["held_out_seeds"] = [1, 2, 3, 4]
    assert floor_draws(JobPlan(cfg), "digits") == 4 * len(cfg["images"]["seeds"])


def test_each_model_reads_the_settings_files_of_its_block():
    plan = JobPlan(load_preset("smoke"))
    for model in plan.trained_models():
        name = plan.sweep_config_name(model)
        assert name.startswith(model.block) and name.endswith("_one_step") == model.one_step
        assert ("train", plan.train_config_name(model)) in plan.job_configs()


def test_train_settings_apply_overrides_per_method_and_reflow_train_to_paired():
    cfg = load_preset("smoke")
    cfg["train_overrides"] = {"cfm": {"steps": 7, "network": {"width": 3}}}
    plan = JobPlan(cfg)
    cfm = train_settings(plan, "cfm")
    assert cfm["steps"] == 7 and cfm["network"]["width"] == 3
    assert cfm["network"]["depth"] == cfg["train"]["network"]["depth"]  # merged, not replaced
    assert train_settings(plan, "ddpm") == cfg["train"]
    for method in PAIRED_METHODS:
        assert train_settings(plan, method)["steps"] == cfg["reflow"]["train"]["steps"]
    assert train_settings(plan, "images/ddpm") == cfg["images"]["train"]
    text = config_text("train", job_config(plan, "train", "cfm"))
    assert yaml.safe_load(text) == cfm


def test_committed_presets_are_valid(preset):
    assert config_problems(preset, SCHEMA) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(methods=["cfm", "flowmatch"]), "methods[1]: 'flowmatch' is not"),
        (lambda c: c["train"]["network"].update(kind="resnet"), "train.network.kind: 'resnet'"),
        (lambda c: c["sampling"]["adaptive"].update(rk45=[1e-3]), "sampling.adaptive: 'rk45'"),
        (lambda c: c["images"].pop("classifier"), "images.classifier: required setting"),
        (lambda c: c.update(methods=["cfm"]), "reflow: needs rectified_flow in methods"),
        (lambda c: c["decompose"].update(seeds=[5]), "decompose.seeds: 5 not in seeds"),
    ],
)
def test_invalid_presets_are_refused_naming_the_field(edit, message):
    cfg = copy.deepcopy(load_preset("smoke"))
    edit(cfg)
    with pytest.raises(InvalidConfig) as refused:
        validate_config(cfg, SCHEMA)
    assert message in str(refused.value)
    assert str(refused.value).startswith("invalid configuration (no job was started)")


def test_schema_names_come_from_the_registries():
    names = registries.names()
    assert names["networks"] == registries.network_kinds() and "mlp" in names["networks"]
    assert set(names["methods"]) == set(METHODS)
    assert not set(names["datasets"]) & set(names["image_datasets"])
    assert all(registries.fid_extractor(d) for d in names["image_datasets"])
    assert not any(registries.fid_extractor(d) for d in names["datasets"])


def test_job_keys_name_the_stage_and_the_wildcards():
    assert job_key("sweep", {"dataset": "moons", "method": "cfm", "seed": "2"}) == \
        "sweep/moons/cfm/seed2"
    assert job_key("reference", {"dataset": "moons"}) == "reference/moons"
    assert job_key("report", {}) == "report"


def test_dvc_stores_every_planned_output(preset):
    outs = [PurePosixPath(p) for p in dvc.stage_paths()]
    for path in JobPlan(preset).outputs():
        parts = PurePosixPath(path).parts
        assert any(parts[: len(o.parts)] == o.parts for o in outs), path


def test_global_flags_are_not_a_snakemake_rerun_trigger():
    """Snakemake leaves out of its params trigger what it cannot represent; a changed
    config hash must not rerun a job whose own settings did not change."""
    persistence = pytest.importorskip("snakemake.persistence")
    from sfbench.pipeline.jobs import GlobalFlags

    flags = GlobalFlags(load_preset("smoke"))
    assert str(flags).startswith("--mlflow-experiment ")
    serialize = persistence.PersistenceBase._serialize_param_builtin
    assert serialize(None, flags) is persistence.UNREPRESENTABLE
    assert serialize(None, str(flags)) is not persistence.UNREPRESENTABLE
