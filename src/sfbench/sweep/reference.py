"""The metrics' noise floor: what a perfect model would score at a sweep's sample count.

Vector data: ``draws`` sample sets drawn from the dataset itself with data
seeds independent of the test split, each scored against the test split by
every registered vector metric. Images: the FID / KID floor (random subsets
of the train split) and the Gaussian baseline (:func:`sfbench.eval.fid.image_reference`).
The result has, for every registered metric, ``<name>`` and ``<name>_std``
(mean and sample std over draws; None where the metric does not apply), so
the report reads the floor of a metric by its registry name.

The floor follows the sweeps' held-out protocol: a method's reported figure
is the mean +- std of its best cell's metric over training seeds x held-out
noise seeds, each value one fresh sample set scored against the test split;
the pipeline asks for as many draws here (``sfbench.pipeline.settings.floor_draws``),
each one independent data set of the sweep's size scored the same way. So a
figure below the floor can only come from the data, not from a lucky draw.
"""

from __future__ import annotations

from typing import Any

from sfbench.errors import SfbenchError


def _summary(draws: list[dict]) -> dict:
    """``<name>`` / ``<name>_std`` of every registered metric over ``draws`` (None where n/a)."""
    import numpy as np

    from sfbench.eval.metrics import METRICS

    out: dict[str, Any] = {}
    for name in METRICS:
        values = [d.get(name) for d in draws]
        if not values or any(v is None for v in values):
            out[name] = out[f"{name}_std"] = None
            continue
        values = np.array(values, dtype=float)
        out[name] = float(values.mean())
        out[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def vector_reference(dataset: Any, test, n_samples: int, seed: int, draws: int) -> dict:
    """Draws ``seed``, ``seed + 1``, ... of the dataset, each scored against ``test``."""
    from sfbench.eval.metrics import evaluator

    evaluate = evaluator("vector", test)
    rows = []
    for k in range(draws):
        # A data seed other than the test split's, so the draw is independent of it.
        x = dataset.sample(n_samples, seed + k, "test")
        rows.append({"data_seed": seed + k, **evaluate(x)})
    return {"draws": rows, **_summary(rows)}


def image_floor(reference: Any, n_samples: int, seed: int, draws: int) -> tuple[dict, dict]:
    """FID / KID floor and Gaussian baseline of an :class:`~sfbench.eval.metrics.ImageReference`;
    (result, protocol). ``reference.options`` may name a features file to write."""
    from sfbench.eval.fid import image_reference

    res = image_reference(reference.dataset, reference.extractor, n_samples, seed, draws=draws,
                          **reference.options)
    protocol = res.pop("protocol")
    from sfbench.eval.metrics import METRICS

    result: dict[str, Any] = {}
    for prefix, part in (("", "floor"), ("baseline_", "baseline")):
        for name in METRICS:  # fid.image_reference measures FID and KID; others are None
            result[f"{prefix}{name}"] = res.get(f"{part}_{name}")
            result[f"{prefix}{name}_std"] = res.get(f"{part}_{name}_std")
    result.update(draws=res["floor"], baseline_draws=res["baseline"])
    return result, protocol


def reference_record(
    dataset: Any, test, *, n_samples: int | None, seed: int, draws: int, data: str | None,
    image: Any = None,
) -> dict:
    """The record of ``sfbench reference`` (CONTRACTS item 5).

    ``image``: an :class:`~sfbench.eval.metrics.ImageReference` of ``dataset``
    for image data (its options write the reference features), else None.
    """
    seeds = [seed + k for k in range(draws)]
    if image is not None:
        if not n_samples:
            raise SfbenchError("the reference of images needs --n-samples "
                               "(the sweep's sample count)")
        result, protocol = image_floor(image, n_samples, seed, draws)
        settings = {
            "mode": "reference", "data_kind": "image", "dataset": dataset.name, "data": data,
            "n_samples": n_samples, "n_test": protocol["n_reference"],
            "reference_seeds": seeds,
            "floor": "random subsets of the train split, one per seed",
            "baseline": "N(mean, covariance) of the train split's pixels, one draw set per seed",
            "fid_protocol": protocol,
        }
        cache = image.options.get("cache_file")
        return {"command": "reference", "settings": settings, "result": result,
                "outputs": [cache] if cache else []}
    n = n_samples or int(test.shape[0])
    settings = {
        "mode": "reference", "data_kind": "vector", "dataset": dataset.name, "data": data,
        "n_samples": n, "n_test": int(test.shape[0]), "reference_seeds": seeds,
    }
    return {"command": "reference", "settings": settings,
            "result": vector_reference(dataset, test, n, seed, draws), "outputs": []}
