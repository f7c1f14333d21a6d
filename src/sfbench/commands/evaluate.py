"""``sfbench evaluate``: distances of a sample set to the test split, and/or the NLL of a model.

Sample metrics (``--samples``): exact W2 (POT), unbiased MMD^2 and the
Frechet distance of the raw coordinates, against the test split of ``--data``.
NLL (``--nll``): negative log-likelihood in nats of test points through the
probability-flow ODE of ``--model`` or the oracle, with the exact divergence.
"""

from __future__ import annotations

import numpy as np
import torch

from sfbench.commands.common import add_result, positive_int
from sfbench.errors import SfbenchError
from sfbench.io import load_array


def add_parser(sub):
    p = sub.add_parser(
        "evaluate", help="metrics of a sample set, NLL of a model", description=__doc__
    )
    p.add_argument("--data", required=True, help=".npz from `sfbench data` (array `test`)")
    p.add_argument("--samples", help=".npz from `sfbench sample` (array `samples`)")
    p.add_argument("--nll", action="store_true", help="evaluate the NLL of the model")
    p.add_argument("--n-test", type=positive_int, help="use the first N test points")
    p.add_argument("--rtol", type=float, default=1e-5, help="dopri5 rtol of the NLL ODE")
    p.add_argument("--atol", type=float, default=1e-5, help="dopri5 atol of the NLL ODE")
    model = p.add_argument_group("model for --nll")
    model.add_argument("--model", help="model file written by `sfbench train`")
    model.add_argument("--oracle", action="store_true", help="the analytic oracle")
    model.add_argument("--method", help="path of the oracle")
    model.add_argument("--dataset", help="dataset of the oracle")
    add_result(p)
    return p


def run(args) -> dict:
    if not args.samples and not args.nll:
        raise SfbenchError("nothing to evaluate: give --samples and/or --nll")
    test = load_array(args.data, "test")
    if args.n_test:
        test = test[: args.n_test]
    settings = {"data": args.data, "n_test": int(test.shape[0])}
    result: dict = {}
    if args.samples:
        from sfbench.eval.distances import frechet_distance_coords, mmd, wasserstein2

        samples = load_array(args.samples, "samples", dim=test.shape[1])
        settings.update(samples=args.samples, n_samples=int(samples.shape[0]))
        result.update(
            w2=wasserstein2(samples, test),
            mmd=mmd(samples, test),
            fid=frechet_distance_coords(samples, test),
        )
    if args.nll:
        from sfbench.commands.common import load_path_model
        from sfbench.eval.nll import nll_nats

        if not (args.model or args.oracle):
            raise SfbenchError("--nll needs --model or --oracle")
        model, info = load_path_model(args)
        dtype = torch.float64 if args.oracle else torch.float32
        res = nll_nats(
            model, torch.as_tensor(np.asarray(test), dtype=dtype), rtol=args.rtol, atol=args.atol
        )
        settings.update(
            model=info, method=info.get("method"), dataset=info.get("dataset"), nll=res.settings
        )
        result.update(nll_nats=res.mean_nats, nll_stderr=res.stderr_nats, nll_nfe=res.nfe)
    return {"command": "evaluate", "settings": settings, "result": result, "outputs": []}
