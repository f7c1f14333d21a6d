"""Each job's command line, as flags of ``sfbench <command>`` built from the plan.

A rule's shell command names only its files (``--out {output.x}``), its job
key and the flags from here, so a setting is read from the preset in one
place. Flags are strings ready for the shell (values quoted where they can
hold spaces). A flag that names an input file takes its path from
``inputs`` when the workflow passes Snakemake's (under a default storage
provider the job reads a local copy at another path); without it, from the
plan.
"""

from __future__ import annotations

import shlex

from sfbench.eval.metrics import IMAGE
from sfbench.pipeline import paths, registries
from sfbench.pipeline.plan import JobPlan, Model
from sfbench.pipeline.settings import FID_DEFAULTS, floor_draws


def job_key(stage: str, wildcards) -> str:
    """Stable MLflow identity of a job: its stage and wildcards (``sweep/moons/cfm/seed0``)."""
    keys = wildcards.keys()
    parts = [stage] + [str(wildcards[k]) for k in ("dataset", "method") if k in keys]
    if "seed" in keys:
        parts.append(f"seed{wildcards['seed']}")
    return "/".join(parts)


def _join(*flags) -> str:
    return " ".join(str(f) for f in flags if f not in (None, ""))


def data_dir_flag(plan: JobPlan, dataset: str) -> str:
    """``--data-dir DIR`` where the images block names a directory for ``dataset``."""
    path = plan.images.get("data", {}).get("data_dir", {}).get(dataset)
    return f"--data-dir {shlex.quote(path)}" if path else ""


def classifier_flag(plan: JobPlan, dataset: str, inputs=None) -> str:
    path = (plan.classifier_inputs(dataset) if inputs is None else inputs).get("classifier")
    return f"--classifier {path}" if path else ""


def data_flags(plan: JobPlan, dataset: str) -> str:
    data = plan.data_block(dataset)["data"]
    return _join(f"--data-seed {data.get('data_seed', 0)}", f"--n-train {data['n_train']}",
                 f"--n-test {data['n_test']}", data_dir_flag(plan, dataset))


def reference_flags(plan: JobPlan, dataset: str, inputs=None) -> str:
    """The noise floor's first data seed and number of draws (:func:`floor_draws`: the
    held-out protocol); images also the FID floor and baseline settings."""
    if registries.data_kind(dataset) != IMAGE:
        return (f"--seed {plan.cfg['evaluation']['reference_seed']}"
                f" --draws {floor_draws(plan, dataset)}")
    evaluation = plan.images["evaluation"]
    fid = {**FID_DEFAULTS, **evaluation.get("fid", {})}
    return _join(
        data_dir_flag(plan, dataset), f"--n-samples {plan.images['sampling']['n_samples']}",
        f"--seed {evaluation['reference_seed']}",
        f"--draws {floor_draws(plan, dataset)}", classifier_flag(plan, dataset, inputs),
        f"--kid-subsets {fid['kid_subsets']} --kid-subset-size {fid['kid_subset_size']}"
        f" --fid-device {fid['device']}",
    )


def classifier_flags(plan: JobPlan) -> str:
    settings = plan.images.get("classifier", {})
    return _join(f"--seed {settings.get('seed', 0)}",
                 f"--steps {settings['steps']}" if "steps" in settings else "")


def train_flags(plan: JobPlan, model: Model, inputs=None) -> str:
    """What a model learns from (its teacher's pairs or the dataset), seed, checkpoints."""
    inputs = plan.train_inputs(model) if inputs is None else inputs
    source = f"--pairs {inputs['pairs']}" if "pairs" in inputs else _join(
        f"--data {inputs['data']}", data_dir_flag(plan, model.dataset))
    return f"{source} --seed {model.seed} --checkpoint-dir {model.path(paths.CHECKPOINTS)}"


def pairs_flags(plan: JobPlan, model: Model) -> str:
    r = plan.reflow
    return (f"--n-pairs {r['n_pairs']} --seed {plan.pair_seed(model)} --solver {r['solver']}"
            f" --steps {r['steps']}")


def sweep_flags(plan: JobPlan, model: Model, inputs=None) -> str:
    """Images: where the data is, the classifier and the reference job's cached features."""
    inputs = plan.sweep_inputs(model) if inputs is None else inputs
    return _join(external_flags(model), data_dir_flag(plan, model.dataset),
                 classifier_flag(plan, model.dataset, inputs),
                 f"--fid-features {inputs['features']}" if "features" in inputs else "")


def external_flags(model: Model) -> str:
    """An external model is recorded under the preset's name and dataset, whatever its
    spec says, so its results sit beside the trained models' (seed 0)."""
    return f"--name {model.method} --dataset {model.dataset}" if model.external else ""


def nll_flags(plan: JobPlan, model: Model) -> str:
    """``sfbench evaluate --nll`` of an image model: bits/dim (+ the VLB of DDPM models)."""
    evaluation = plan.images["evaluation"]
    nll = evaluation["nll"]
    vlb = model.has_vlb and evaluation.get("vlb", True)
    return _join("--vlb" if vlb else "", f"--dataset {model.dataset}",
                 f"--name {model.method}" if model.external else "",
                 data_dir_flag(plan, model.dataset), f"--n-test {nll['n_points']}",
                 f"--rtol {nll['rtol']} --atol {nll['atol']}",
                 f"--divergence {nll.get('divergence', 'auto')}",
                 f"--n-probes {nll.get('n_probes', 1)}",
                 f"--device {nll['device']}" if nll.get("device", "cpu") != "cpu" else "")


def decompose_flags(plan: JobPlan) -> str:
    d = plan.decompose
    return (f"--solvers {' '.join(d['solvers'])} --steps {' '.join(map(str, d['steps']))}"
            f" --n-samples {d['n_samples']} --seed {d['seed']}"
            f" --exact-tolerance {d['exact_tolerance']}"
            f" --floor-seed {plan.cfg['evaluation']['reference_seed']}")


def report_flags(plan: JobPlan, out_dir: str = paths.REPORT_DIR) -> str:
    """``out_dir``: where Snakemake wants the report (under a default storage
    provider, the local copy of paths.REPORT_DIR, not that path)."""
    report = plan.cfg["report"]
    return (f"--preset {plan.cfg['preset']} --out-dir {shlex.quote(str(out_dir))}"
            f" --quality-datasets {' '.join(report['quality_datasets']) or 'none'}"
            f" --quality-factor {report['quality_factor']}")
