"""The job plan of a preset: which models exist and which jobs and files they make.

Three blocks of a preset train models: the top level (``main``: 2-D datasets),
``images`` and ``reflow``; a fourth, ``external``, lists models sfbench did not
train (a diffusers directory or a declared PyTorch network, read by
:mod:`sfbench.external`), which are swept and evaluated beside them on the data
block of their dataset. The reflow block trains the paired methods of
:data:`sfbench.methods.PAIRED_METHODS` as a chain (:data:`REFLOW_CHAIN`):
each link is trained on (noise, ODE sample) pairs of the link before it, the
first link being the preset's data-trained 1-RF model.

Which jobs a model gets follows from what the package declares, not from
names: its dataset's kind (vector data: the sweep job also computes the NLL;
images: FID features and their own NLL job), its method's ``one_step`` (a
one-step map has no ODE and so no NLL, and is swept by one Euler step) and
``needs_pairs`` (trained on a pairs file instead of the data).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sfbench.eval.metrics import IMAGE, VECTOR
from sfbench.methods import PAIRED_METHODS
from sfbench.pipeline import paths, registries
from sfbench.report.manifest import ReportContents


#: 1-RF (data-trained), then every paired method in order, each on pairs of the one before.
def reflow_chain() -> tuple[str, ...]:
    """The data-trained method the paired methods start from, then each paired method
    (declared after its teacher in :data:`~sfbench.methods.PAIRED_METHODS`)."""
    chain: list[str] = []
    for method in PAIRED_METHODS.values():
        chain = chain or [method.teacher]
        if method.teacher not in chain:
            raise ValueError(f"paired method {method.name!r}: its teacher {method.teacher!r} "
                             "must be declared before it")
        chain.append(method.name)
    return tuple(chain)


REFLOW_CHAIN = reflow_chain()
#: The block of models the preset lists but does not train.
EXTERNAL = "external"
#: Offset of a link's pair-noise seed per position in the chain (fresh noise per link).
PAIR_SEED_STRIDE = 1000


@dataclass(frozen=True)
class Model:
    """One trained model of the preset and the block that sets it up."""

    dataset: str
    method: str  # an external model's name
    seed: int
    block: str  # "main", "images", "reflow" or "external"
    source: str | None = None  # an external model's directory or spec file

    @property
    def external(self) -> bool:
        """Not trained by the pipeline: no train job, its file is the preset's ``source``."""
        return self.block == EXTERNAL

    @property
    def wildcards(self) -> dict:
        return {"dataset": self.dataset, "method": self.method, "seed": self.seed}

    def path(self, pattern: str) -> str:
        return paths.fill(pattern, **self.wildcards)

    @property
    def kind(self) -> str:
        return registries.data_kind(self.dataset)

    @property
    def one_step(self) -> bool:
        return not self.external and registries.one_step(self.method)

    @property
    def needs_pairs(self) -> bool:
        return not self.external and registries.needs_pairs(self.method)

    @property
    def has_vlb(self) -> bool:
        """The DDPM variational bound: methods on sfbench's own discrete schedule."""
        return not self.external and registries.has_vlb(self.method)

    @property
    def has_nll(self) -> bool:
        """A likelihood through the probability-flow ODE (a one-step map has no ODE)."""
        return not self.one_step

    @property
    def nll_in_sweep(self) -> bool:
        """Vector data: the sweep job computes the NLL; images: a job of its own."""
        return self.has_nll and self.kind == VECTOR


@dataclass(frozen=True)
class Job:
    rule: str
    outputs: tuple[str, ...]


class JobPlan:
    """Models, datasets and jobs of one validated preset."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.images = cfg.get("images") or {}
        self.reflow = cfg.get("reflow") or {}
        self.decompose = cfg.get("decompose") or {}
        self.external = cfg.get(EXTERNAL) or []
        self._external_files: dict[str, list[str]] = {}  # source -> its files

    # ---------------------------------------------------------------- models
    def block_models(self, block: str) -> list[Model]:
        part = {"main": self.cfg, "images": self.images}.get(block)
        if block == "reflow":
            return [Model(d, m, s, block) for d in self.reflow.get("datasets", [])
                    for m in reflow_chain()[1:] for s in self.reflow.get("seeds", [])]
        if block == EXTERNAL:  # one model each, seed 0: its only "training seed"
            return [Model(e["dataset"], e["name"], 0, block, source=e["source"])
                    for e in self.external]
        if not part:
            return []
        return [Model(d, m, s, block)
                for d in part["datasets"] for m in part["methods"] for s in part["seeds"]]

    def models(self) -> list[Model]:
        return [m for b in ("main", "images", "reflow", EXTERNAL) for m in self.block_models(b)]

    def trained_models(self) -> list[Model]:
        return [m for m in self.models() if not m.external]

    @functools.cached_property
    def _by_wildcards(self) -> dict[tuple, Model]:
        return {(m.dataset, m.method, m.seed): m for m in self.models()}

    def model(self, dataset: str, method: str, seed) -> Model:
        """The model of a job's wildcards (every input function asks: an index)."""
        try:
            return self._by_wildcards[(dataset, method, int(seed))]
        except KeyError:
            raise KeyError(f"no model {dataset}/{method}/seed{seed} in this preset") from None

    def teacher(self, model: Model) -> Model:
        """The model whose ODE makes the pairs a paired model is trained on."""
        return self.model(model.dataset, PAIRED_METHODS[model.method].teacher, model.seed)

    def pair_seed(self, model: Model) -> int:
        link = reflow_chain().index(model.method)
        return self.reflow["pair_seed"] + PAIR_SEED_STRIDE * (link - 1) + model.seed

    def decompose_models(self) -> list[Model]:
        """The models of the decompose block's datasets and seeds (paired ones included)."""
        d = self.decompose
        return [m for m in self.models() if m.block in ("main", "reflow")
                and m.dataset in d.get("datasets", []) and m.seed in d.get("seeds", [])]

    # ---------------------------------------------------------------- datasets
    def datasets(self, kind: str | None = None) -> list[str]:
        every = self.cfg["datasets"] + self.images.get("datasets", [])
        return [d for d in every if kind is None or registries.data_kind(d) == kind]

    def data_block(self, dataset: str) -> dict:
        """The part of the preset that sets up ``dataset``: the images block or the top level."""
        return self.images if dataset in self.images.get("datasets", []) else self.cfg

    def classifier_datasets(self) -> list[str]:
        return [d for d in self.datasets(IMAGE) if registries.needs_classifier(d)]

    # ---------------------------------------------------------------- job inputs
    def classifier_inputs(self, dataset: str) -> dict[str, str]:
        """The classifier a dataset's FID extracts features with, where the pipeline trains it."""
        if not registries.needs_classifier(dataset):
            return {}
        return {"classifier": paths.fill(paths.CLASSIFIER, dataset=dataset)}

    def reference_inputs(self, dataset: str) -> dict[str, str]:
        return {"data": paths.fill(paths.DATA, dataset=dataset), **self.classifier_inputs(dataset)}

    def train_inputs(self, model: Model) -> dict[str, str]:
        """A paired model learns from its teacher's pairs, the others from the dataset."""
        source = {"pairs": model.path(paths.PAIRS)} if model.needs_pairs else {
            "data": model.path(paths.DATA)}
        name = self.train_config_name(model)
        return {**source, "config": paths.fill(paths.JOB_CONFIG, kind="train", name=name)}

    def pairs_inputs(self, model: Model) -> dict[str, str]:
        return {"model": self.teacher(model).path(paths.MODEL)}

    def model_inputs(self, model: Model) -> dict[str, str]:
        """What a job evaluating a model reads: the model (the trained file, or an external
        model's source) and its dataset."""
        if not model.external:
            return {"model": model.path(paths.MODEL), "data": model.path(paths.DATA)}
        return {"model": model.source, "data": model.path(paths.DATA),
                "model_files": self.external_files(model)}

    def external_files(self, model: Model) -> list[str]:
        """The files an external model is read from (its jobs rerun when one changes), as
        paths relative to the working directory where they lie under it. Read once per plan:
        Snakemake asks for every job that reads the model (its sweep and NLL jobs)."""
        if model.source not in self._external_files:
            from sfbench.external.spec import model_files

            cwd = Path.cwd()
            self._external_files[model.source] = [
                os.path.relpath(f) if f.resolve().is_relative_to(cwd) else str(f)
                for f in model_files(model.source)]
        return list(self._external_files[model.source])

    def sweep_inputs(self, model: Model) -> dict[str, str]:
        """Model, data and sweep config; images also the FID classifier and cached features."""
        name = self.sweep_config_name(model)
        inputs = {**self.model_inputs(model),
                  "config": paths.fill(paths.JOB_CONFIG, kind="sweep", name=name)}
        if model.kind == IMAGE:
            inputs.update(self.classifier_inputs(model.dataset),
                          features=model.path(paths.REFERENCE_FEATURES))
        return inputs

    # ---------------------------------------------------------------- settings files
    def train_config_name(self, model: Model) -> str:
        return f"images/{model.method}" if model.block == "images" else model.method

    def sweep_config_name(self, model: Model) -> str:
        """The sweep settings of the model's block; an external model's are those of the
        block its dataset belongs to, so it is sampled exactly as the trained models are."""
        block = model.block
        if model.external:
            block = "images" if model.kind == IMAGE else "main"
        return f"{block}_one_step" if model.one_step else block

    def job_configs(self) -> list[tuple[str, str]]:
        """(kind, name) of every settings file a job reads, in plan order."""
        names = [("train", self.train_config_name(m)) for m in self.trained_models()]
        names += [("sweep", self.sweep_config_name(m)) for m in self.models()]
        return list(dict.fromkeys(names))

    # ---------------------------------------------------------------- report
    def report_contents(self) -> ReportContents:
        return ReportContents(
            datasets=tuple(self.cfg["datasets"]),
            image_datasets=tuple(self.images.get("datasets", [])),
            methods=tuple(dict.fromkeys(m.method for m in self.models())),
            image_methods=tuple(self.images.get("methods", [])) + tuple(
                m.method for m in self.block_models(EXTERNAL) if m.kind == IMAGE),
            decompose_datasets=tuple(dict.fromkeys(m.dataset for m in self.decompose_models())),
        )

    def report_files(self, part: str = "files") -> list[str]:
        """Paths of the report's ``files`` (all), ``tables`` or ``figures``."""
        return [f"{paths.REPORT_DIR}/{f}" for f in getattr(self.report_contents(), part)()]

    def report_documents(self) -> list[str]:
        """The report's files besides its tables and figures (text, HTML, metrics, curves)."""
        exclude = set(self.report_files("tables") + self.report_files("figures"))
        return [f for f in self.report_files() if f not in exclude]

    def report_inputs(self) -> dict[str, list[str]]:
        """The records the report reads, by kind, and the samples it draws from."""
        models = self.models()
        return {
            "data": [paths.fill(paths.DATA_RECORD, dataset=d) for d in self.datasets()],
            "reference": [paths.fill(paths.REFERENCE, dataset=d) for d in self.datasets()],
            "classifier": [paths.fill(paths.CLASSIFIER_RECORD, dataset=d)
                           for d in self.classifier_datasets()],
            "train": [m.path(paths.TRAIN_RECORD) for m in self.trained_models()],
            "sweep": [m.path(paths.SWEEP) for m in models],
            "nll": [m.path(paths.NLL) for m in models if m.has_nll],
            "decompose": [m.path(paths.DECOMPOSE) for m in self.decompose_models()],
            "samples": [m.path(paths.SAMPLES) for m in models],
        }

    # ---------------------------------------------------------------- jobs
    def jobs(self) -> list[Job]:
        """Every job of the preset with the files it writes (its rule as the workflow names it)."""
        jobs = [Job("data", (paths.fill(paths.DATA, dataset=d),
                             paths.fill(paths.DATA_RECORD, dataset=d)))
                for d in self.datasets()]
        for d in self.datasets():
            image = registries.data_kind(d) == IMAGE
            outputs = paths.reference_outputs(features=image).values()
            jobs.append(Job("image_reference" if image else "reference",
                            tuple(paths.fill(p, dataset=d) for p in outputs)))
        jobs += [Job("classifier", (paths.fill(paths.CLASSIFIER, dataset=d),
                                    paths.fill(paths.CLASSIFIER_RECORD, dataset=d)))
                 for d in self.classifier_datasets()]
        jobs += [Job("job_config", (paths.fill(paths.JOB_CONFIG, kind=k, name=n),))
                 for k, n in self.job_configs()]
        for m in self.models():
            if not m.external:
                jobs.append(Job("train", (m.path(paths.MODEL), m.path(paths.TRAIN_RECORD))))
            if m.needs_pairs:
                jobs.append(Job("pairs", (m.path(paths.PAIRS), m.path(paths.PAIRS_RECORD))))
            sweep = paths.sweep_outputs(nll=m.nll_in_sweep)
            jobs.append(Job("sweep" if m.nll_in_sweep else "sweep_no_nll",
                            tuple(m.path(p) for p in sweep.values())))
            if m.has_nll and not m.nll_in_sweep:
                jobs.append(Job("nll", (m.path(paths.NLL),)))
        jobs += [Job("decompose", (m.path(paths.DECOMPOSE),)) for m in self.decompose_models()]
        jobs.append(Job("report", (*self.report_files(), paths.REPORT_RESULT)))
        return jobs

    def job_counts(self) -> dict[str, int]:
        """Jobs per rule, as a dry run's `Job stats` table counts them (with `all`)."""
        counts = Counter(job.rule for job in self.jobs())
        counts["all"] = 1
        counts["total"] = sum(counts.values())
        return dict(counts)

    def outputs(self) -> list[str]:
        return [f for job in self.jobs() for f in job.outputs]

