"""The metric registry: every number a sweep measures on a sample set, one entry each.

An entry names the metric (its key in records, tables, figure file names),
labels it for tables and plots, says which kinds of data it applies to
(``vector``: 2-D / flat points; ``image``: discrete images measured through
the dataset's pinned feature extractor) and builds its evaluator against a
test set. The sweep, the reference command, the report's tables and plots
and the pipeline's list of figures all read :data:`METRICS`, so a metric
added here (or by a test, through :func:`register`, or by another package's
entry point, :mod:`sfbench.plugins`) reaches all of them.

Two Frechet distances, two names: ``fd`` is the squared Frechet distance of
Gaussians fitted to the raw coordinates (vector data), ``fid`` the FID of the
dataset's pinned extractor's features (images; Heusel et al. 2017).

An evaluator maps a sample set ``[N, D]`` to ``{name: value}``, plus
``{name}_std`` where the metric has its own spread (KID over subsets). The
test-set side of each metric is prepared once when it is built (MMD's y-y
kernel sum, the extractor's reference features), since a sweep scores tens of
sample sets against one test set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfbench import plugins

if TYPE_CHECKING:
    import numpy as np

VECTOR, IMAGE = "vector", "image"
KINDS = (VECTOR, IMAGE)

Evaluator = Callable[["np.ndarray"], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """One registry entry. ``build(reference)`` returns the evaluator of a test set."""

    name: str
    label: str  # tables (plain text / unicode)
    plot_label: str  # figure axes (matplotlib mathtext)
    kinds: frozenset[str]
    build: Callable[[Any], Evaluator]
    lower_is_better: bool = True
    has_std: bool = False  # the evaluator also returns ``{name}_std``
    # figures: a log y axis (positive values spanning decades; not for unbiased estimators,
    # MMD² and KID, which can be < 0)
    log_axis: bool = False

    def __post_init__(self):
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"metric {self.name!r}: kinds must be a non-empty subset of {KINDS}")

    def applies_to(self, kind: str) -> bool:
        return kind in self.kinds


#: The built-in metrics (registered below), then the ``sfbench.metrics`` plug-ins
#: (:mod:`sfbench.plugins`), loaded when the registry is first read.
METRICS: plugins.Registry[Metric] = plugins.Registry(
    plugins.GROUPS["metrics"], {}, plugins.instance_of(Metric)
)
#: The metric a sweep's best cell is chosen by, per kind of data.
SELECTION = {VECTOR: "w2", IMAGE: "fid"}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (a name may be registered once)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return METRICS[name]


def metrics_for(kind: str) -> list[Metric]:
    """The registered metrics that apply to ``kind`` of data, in registration order."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of data {kind!r}; valid: {', '.join(KINDS)}")
    return [m for m in METRICS.values() if m.applies_to(kind)]


def metric_keys() -> list[str]:
    """Every record key the registry can fill: names and, where a metric has one, ``_std``."""
    keys = []
    for m in METRICS.values():
        keys += [m.name, f"{m.name}_std"] if m.has_std else [m.name]
    return keys


def evaluator(kind: str, reference: Any) -> Evaluator:
    """All metrics of ``kind`` against ``reference`` as one evaluator.

    ``reference``: the test points ``[M, D]`` for vector data, an
    :class:`ImageReference` for images. The result has every key of
    :func:`metric_keys`: None where a metric does not apply to ``kind``, NaN
    for every applicable one when a sample is not finite.
    """
    import numpy as np

    chosen = [(m, m.build(reference)) for m in metrics_for(kind)]
    empty = dict.fromkeys(metric_keys())

    def evaluate(samples: np.ndarray) -> dict[str, float | None]:
        out = dict(empty)
        if not np.isfinite(samples).all():
            for m, _ in chosen:
                out[m.name] = math.nan
                if m.has_std:
                    out[f"{m.name}_std"] = math.nan
            return out
        for _, fn in chosen:
            out.update(fn(samples))
        return out

    return evaluate


# --- vector data: the test points themselves are the reference ----------------


def _w2(test) -> Evaluator:
    from sfbench.eval.distances import wasserstein2

    return lambda x: {"w2": wasserstein2(x, test)}


def _mmd(test) -> Evaluator:
    from sfbench.eval.distances import MMDAgainst

    against = MMDAgainst(test)
    return lambda x: {"mmd": against(x)}


def _fd(test) -> Evaluator:
    from sfbench.eval.distances import frechet_distance_coords

    return lambda x: {"fd": frechet_distance_coords(x, test)}


# --- images: features of the dataset's pinned extractor ------------------------


@dataclass
class ImageReference:
    """What the image metrics compare with: the dataset, its extractor and its options.

    ``options`` go to :func:`sfbench.eval.fid.fid_kid` (cache_file,
    write_cache, kid_subsets, kid_subset_size, device). FID and KID come from
    one feature pass per sample set (:meth:`scores` remembers the last one).
    """

    dataset: Any
    extractor: Any
    options: dict
    protocol: dict | None = None
    _last: tuple | None = None

    @classmethod
    def of(cls, dataset, weights: str | None = None, **options) -> ImageReference | None:
        """The reference of ``dataset`` with its declared extractor (``weights``: the
        extractor's file where it needs one); None for vector data."""
        if dataset.kind != IMAGE:
            return None
        from sfbench.eval.extractors import extractor_name, get_extractor

        return cls(dataset, get_extractor(extractor_name(dataset), weights, dataset.dim), options)

    def scores(self, samples) -> dict:
        if self._last is None or self._last[0] is not samples:
            from sfbench.eval.fid import fid_kid

            res = fid_kid(samples, self.dataset, self.extractor, **self.options)
            self.protocol = self.protocol or res["protocol"]
            self._last = (samples, res)
        return self._last[1]


def _fid(ref: ImageReference) -> Evaluator:
    return lambda x: {"fid": ref.scores(x)["fid"]}


def _kid(ref: ImageReference) -> Evaluator:
    def kid(x):
        res = ref.scores(x)
        return {"kid": res["kid_mean"], "kid_std": res["kid_std"]}

    return kid


# Set, not register(): asking whether a name is taken would read the registry, and so
# import plug-ins (whose modules import this one) while this module is imported.
for _metric in (
    Metric("w2", "W2", "W2", frozenset({VECTOR}), _w2, log_axis=True),
    Metric("mmd", "MMD²", "MMD$^2$", frozenset({VECTOR}), _mmd),
    Metric("fd", "FD", "Fréchet distance (coordinates)", frozenset({VECTOR}), _fd,
           log_axis=True),
    Metric("fid", "FID", "FID (pinned extractor)", frozenset({IMAGE}), _fid, log_axis=True),
    Metric("kid", "KID", "KID", frozenset({IMAGE}), _kid, has_std=True),
):
    METRICS[_metric.name] = _metric
