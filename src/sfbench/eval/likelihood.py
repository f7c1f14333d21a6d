"""The NLL part of a record: one function shared by ``sfbench evaluate --nll`` and the sweep.

``sfbench sweep --nll-result`` writes the record ``sfbench evaluate --nll``
would write for the same model (the report reads both alike); both build it
here, so the two files cannot drift apart. Vector data: NLL in nats of the
test points through the probability-flow ODE (:func:`sfbench.eval.nll.nll_nats`;
float64 for the analytic oracle). Images: bits/dim of the dequantized test
images (:func:`sfbench.eval.bits.nll_bits_per_dim`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class NLLOptions:
    """The settings of the NLL ODE (the flags of ``sfbench evaluate``)."""

    rtol: float = 1e-5
    atol: float = 1e-5
    divergence: str = "auto"
    n_probes: int = 1
    probe_seed: int = 0
    batch_size: int = 1000
    dequant_seed: int = 0  # images: seed of the uniform dequantization

    def solver_options(self) -> dict:
        out = asdict(self)
        out.pop("dequant_seed")
        return out


def measure_nll(model: Any, test, options: NLLOptions, *, levels: int | None = None,
                float64: bool = False, device: str = "cpu") -> tuple[dict, dict]:
    """(settings of the NLL, its result keys) of ``model`` on the points ``test``.

    ``levels``: pixel levels of an image dataset (bits/dim), None for vector
    data; ``float64``: integrate in double precision (the oracle); ``device``:
    where the ODE is integrated (the model must already be there).
    """
    if levels is not None:
        from sfbench.eval.bits import nll_bits_per_dim

        res = nll_bits_per_dim(model, test, levels, seed=options.dequant_seed,
                               device=device, **options.solver_options())
        res.pop("bits")
        settings = {k: v for k, v in res.items() if not k.startswith("nll_")}
        return {**settings, "device": device}, {"nll_bits_per_dim": res["nll_bits_per_dim_mean"],
                          "nll_bits_per_dim_stderr": res["nll_bits_per_dim_stderr"],
                          "nll_nats": res["nll_nats_mean"], "nll_nfe": res["nfe"]}
    import torch

    from sfbench.eval.nll import nll_nats

    dtype = torch.float64 if float64 else torch.float32
    res = nll_nats(model, torch.as_tensor(test, dtype=dtype, device=device),
                   **options.solver_options())
    result = {"nll_nats": res.mean_nats, "nll_stderr": res.stderr_nats, "nll_nfe": res.nfe}
    return {**res.settings, "device": device}, result


def nll_record(model: Any, model_info: dict, test, options: NLLOptions, *, data: str | None,
               dataset: str | None = None, levels: int | None = None,
               load_seconds: float = 0.0, device: str = "cpu") -> dict:
    """The record of ``sfbench evaluate --nll`` (no ``--samples``, no ``--vlb``) for ``model``.

    ``test``: the test points measured (already cut to ``--n-test``);
    ``dataset``: the ``--dataset`` of that command (None: the model's own).
    """
    tic = time.perf_counter()
    settings = {"data": data, "dataset": dataset or model_info.get("dataset"),
                "model": model_info, "method": model_info.get("method"),
                "n_test": int(test.shape[0])}
    nll_settings, result = measure_nll(model, test, options, levels=levels,
                                       float64=model_info.get("source") == "oracle",
                                       device=device)
    settings["nll"] = nll_settings
    result = {"load_seconds": load_seconds, **result,
              "nll_seconds": time.perf_counter() - tic}
    return {"command": "evaluate", "settings": settings, "result": result, "outputs": []}
