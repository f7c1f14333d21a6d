"""What the workflow asks the package registries: names, data kinds, extractors.

The job plan keys every variant of a job on these declarations instead of on
dataset or method names: a dataset's *kind* ("vector" or "image", the metric
registry's kinds) picks its reference, sweep and NLL jobs; a method's
``needs_pairs`` / ``one_step`` (:class:`sfbench.methods.Method`) put it into
the reflow chain and decide whether it has an ODE likelihood; an image
dataset's ``fid_extractor`` decides whether the pipeline trains a classifier
for its FID.
"""

from __future__ import annotations

from sfbench.data import DATASETS
from sfbench.eval.metrics import IMAGE, VECTOR
from sfbench.methods import METHODS, get_method

#: Extractors whose weights the pipeline trains itself (`sfbench classifier`);
#: the others (Inception) are pinned files. Keyed by extractor, not dataset.
TRAINED_EXTRACTORS = ("digits_classifier",)

def data_kind(dataset: str) -> str:
    """``"image"`` for discrete-pixel datasets, ``"vector"`` otherwise."""
    return DATASETS[dataset].kind


def fid_extractor(dataset: str) -> str | None:
    """The pinned FID feature extractor of an image dataset (None for vector data)."""
    return DATASETS[dataset].fid_extractor


def needs_classifier(dataset: str) -> bool:
    """True when the dataset's FID needs the classifier the pipeline trains."""
    return fid_extractor(dataset) in TRAINED_EXTRACTORS


def needs_pairs(method: str) -> bool:
    return get_method(method).needs_pairs


def one_step(method: str) -> bool:
    """A one-step map (distillation): one Euler step is its only sampler, it has no ODE."""
    return get_method(method).one_step


def network_kinds() -> list[str]:
    from sfbench.models.registry import NETWORKS

    return sorted(NETWORKS)


def plugin_names(registry: str) -> list[str]:
    """Names ``registry`` ("methods", "solvers", ...) takes from installed plug-ins."""
    from sfbench.plugins import GROUPS, names

    return sorted(names(GROUPS[registry]))


def names() -> dict[str, list[str]]:
    """Valid names of every registry a preset refers to (the schema's enums)."""
    from sfbench.solvers import GRIDS
    from sfbench.solvers.registry import SOLVERS

    return {
        "datasets": sorted(d for d in DATASETS if data_kind(d) == VECTOR),
        "image_datasets": sorted(d for d in DATASETS if data_kind(d) == IMAGE),
        # datasets with a closed-form oracle (the error decomposition needs one)
        "mixtures": sorted(n for n, d in DATASETS.items() if getattr(d, "mixture", None)),
        "methods": sorted(METHODS),
        "fixed_solvers": sorted(n for n, s in SOLVERS.items() if not s.adaptive),
        "adaptive_solvers": sorted(n for n, s in SOLVERS.items() if s.adaptive),
        "grids": sorted(GRIDS),
        "networks": network_kinds(),
    }


def has_vlb(method: str) -> bool:
    """The DDPM variational bound needs the model's own discrete steps (a DDPMSchedule)."""
    from sfbench.paths import DDPMSchedule

    make = get_method(method).make_schedule
    return isinstance(make, type) and issubclass(make, DDPMSchedule)
