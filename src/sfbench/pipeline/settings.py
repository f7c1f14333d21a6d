"""The settings files jobs read: a training config per method, a sweep config per block.

``sfbench train --config`` reads the first (TrainConfig fields), ``sfbench
sweep --config`` the second (:class:`sfbench.sweep.config.SweepConfig`), so the
same file reproduces a job by hand. A rule writes each one from
:func:`config_text`; a changed setting rewrites the file and reruns exactly
the jobs that read it.
"""

from __future__ import annotations

import copy
import json

import yaml

from sfbench.pipeline import registries
from sfbench.pipeline.plan import JobPlan

#: FID / KID settings of the image sweeps and references when the preset leaves them out.
FID_DEFAULTS = {"kid_subsets": 100, "kid_subset_size": 1000, "device": "cpu"}


def train_settings(plan: JobPlan, name: str) -> dict:
    """TrainConfig fields of train config ``name`` (``method`` or ``images/method``).

    The block's ``train`` updated by ``train_overrides[method]``; a paired method
    (the reflow chain) by ``reflow.train`` instead.
    """
    block_name, _, method = name.rpartition("/")
    block = plan.images if block_name == "images" else plan.cfg
    settings = copy.deepcopy(block["train"])
    if block_name != "images" and registries.needs_pairs(method):
        override = copy.deepcopy(plan.reflow.get("train", {}))
    else:
        override = copy.deepcopy(block.get("train_overrides", {}).get(method, {}))
    network = {**settings.get("network", {}), **override.pop("network", {})}
    settings.update(override)
    if network:
        settings["network"] = network
    return settings


def sweep_settings(plan: JobPlan, name: str) -> dict:
    """SweepConfig of sweep config ``name``: ``<block>`` or ``<block>_one_step``.

    The block's sampling settings; vector blocks add their NLL (computed by the
    sweep job), the images block its FID settings (its NLL is a job of its own).
    The reflow block samples with the top level's settings (held-out seeds and
    native column included) and its own ODE solvers; a one-step model is swept by
    its only valid sampler, one Euler step, on the same noise seeds.
    """
    block_name = name.removesuffix("_one_step")
    images = block_name == "images"
    sampling = plan.images["sampling"] if images else plan.cfg["sampling"]
    settings = {
        "solvers": list(sampling["solvers"]),
        "steps": list(sampling["steps"]),
        "grids": list(sampling.get("grids", ["uniform"])),
        "adaptive": copy.deepcopy(sampling["adaptive"]),
        "n_samples": sampling["n_samples"],
        "seed": sampling["seed"],
        "held_out_seeds": list(sampling.get("held_out_seeds", [])),
        "native": bool(sampling.get("native", False)),
        "device": sampling.get("device", "cpu"),
        "trajectory": None if images else dict(sampling["trajectory"]),
        "straightness": copy.deepcopy(sampling.get("straightness")),
        "nll": None if images else dict(plan.cfg["evaluation"]["nll"]),
        "fid": {**FID_DEFAULTS, **plan.images["evaluation"].get("fid", {})} if images else None,
    }
    if block_name == "reflow":  # a paired model has no score: ODE solvers only
        settings.update(solvers=list(plan.reflow["sweep_solvers"]), grids=["uniform"])
    if name.endswith("_one_step"):
        n_points = settings["trajectory"]["n_points"] if settings["trajectory"] else None
        settings.update(solvers=["euler"], steps=[1], grids=["uniform"], adaptive={}, nll=None,
                        trajectory={"solver": "euler", "steps": 1, "n_points": n_points}
                        if n_points else None)
    return settings


def floor_draws(plan: JobPlan, dataset: str) -> int:
    """Independent data draws of ``dataset``'s noise floor (``sfbench reference --draws``).

    The floor is measured with the held-out protocol: a method's figure is the mean
    (and std) over training seeds x held-out seeds, so the floor is the mean (and
    std) over as many independent draws, each scored like a held-out sample set.
    Never fewer than the 3 draws of before held-out seeds (a smaller protocol, as in
    the smoke preset, keeps the floor as precise as it was). Images:
    ``reference_draws`` wins where the preset gives it (an FID floor is costly).
    """
    block = plan.data_block(dataset)
    explicit = block.get("evaluation", {}).get("reference_draws")
    if block is plan.images and explicit:
        return int(explicit)
    held_out = block["sampling"].get("held_out_seeds", [])
    return max(3, len(block["seeds"]) * len(held_out))


def job_config(plan: JobPlan, kind: str, name: str) -> dict:
    return (train_settings if kind == "train" else sweep_settings)(plan, name)


def config_text(kind: str, settings: dict) -> str:
    """The text of a settings file: YAML.

    Training configs were sorted JSON (a YAML subset) before sweep configs
    existed; they keep those bytes wherever YAML reads them back unchanged, so
    models of earlier runs are not retrained (PyYAML reads JSON's ``1e-05`` as
    text, hence YAML proper otherwise).
    """
    text = json.dumps(settings, sort_keys=True)
    if kind == "train" and yaml.safe_load(text) == settings:
        return text
    return yaml.safe_dump(settings, sort_keys=True)
