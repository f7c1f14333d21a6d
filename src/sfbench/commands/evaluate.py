"""``sfbench evaluate``: metrics of a sample set, and/or the NLL (or DDPM bound) of a model.

Vector data (2-D): ``--samples`` gives exact W2 (POT), unbiased MMD^2 and the
Frechet distance of the raw coordinates (``fd``) against the test split of ``--data``;
``--nll`` the negative log-likelihood in nats of test points through the
probability-flow ODE of ``--model`` or the oracle.

Images (``--dataset`` digits, fashion_mnist, cifar10): ``--samples`` gives
FID and KID with the dataset's pinned feature extractor against its test
split (digits: ``--classifier``, the file of ``sfbench classifier``), with
the protocol recorded; ``--nll`` gives bits/dim of the dequantized test
images; ``--vlb`` the variational bound of a ``ddpm`` model in bits/dim.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_external_name, add_result
from sfbench.errors import SfbenchError

if TYPE_CHECKING:
    import numpy as np


def add_parser(sub):
    p = sub.add_parser(
        "evaluate", help="metrics of a sample set, NLL of a model", description=__doc__
    )
    p.add_argument("--data", help=".npz from `sfbench data` (array `test`)")
    p.add_argument("--samples", help=".npz from `sfbench sample` (array `samples`)")
    p.add_argument("--nll", action="store_true", help="evaluate the NLL of the model")
    p.add_argument("--vlb", action="store_true", help="DDPM variational bound (images, ddpm)")
    p.add_argument("--n-test", type=positive_int, help="use the first N test points")
    p.add_argument("--rtol", type=float, default=1e-5,
                   help="dopri5 rtol of the NLL ODE, the sampler's meaning: RMS over the "
                   "batch's entries of error / (atol + rtol |y|) <= 1, for the points and "
                   "the log-density each (sfbench.eval.nll)")
    p.add_argument("--atol", type=float, default=1e-5,
                   help="dopri5 atol of the NLL ODE (same error norm as --rtol)")
    p.add_argument("--divergence", choices=("auto", "exact", "hutchinson"), default="auto",
                   help="trace of the NLL ODE (auto: exact up to 64 dimensions)")
    p.add_argument("--n-probes", type=positive_int, default=1, help="Hutchinson probes")
    p.add_argument("--probe-seed", type=non_negative_int, default=0)
    p.add_argument("--dequant-seed", type=non_negative_int, default=0,
                   help="seed of the uniform dequantization (images)")
    p.add_argument("--nll-batch-size", type=positive_int, default=1000)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="where the model runs for --nll / --vlb (auto: cuda if available)")
    images = p.add_argument_group("images")
    images.add_argument("--data-dir", help="where image datasets' files are")
    images.add_argument("--classifier", help="digits classifier file (digits FID)")
    images.add_argument("--fid-cache", help="directory of cached reference features")
    images.add_argument("--kid-subsets", type=positive_int, default=100)
    images.add_argument("--kid-subset-size", type=positive_int, default=1000)
    images.add_argument("--fid-device", default="cpu", help="device of the feature extractor")
    model = p.add_argument_group("model for --nll / --vlb")
    model.add_argument("--model", help="model file written by `sfbench train`")
    model.add_argument("--oracle", action="store_true", help="the analytic oracle")
    model.add_argument("--method", help="path of the oracle")
    model.add_argument("--dataset", help="dataset (of the oracle; of image metrics)")
    add_external_name(model)
    add_result(p)
    return p


def _image_dataset(args):
    from sfbench.data import get_dataset

    ds = get_dataset(args.dataset, args.data_dir) if args.dataset else None
    return ds if ds is not None and ds.levels is not None else None


def _test_points(args, ds) -> np.ndarray:
    from sfbench.io import load_array

    if not args.data:
        raise SfbenchError("--data (a file from `sfbench data`) is needed for these metrics")
    test = load_array(args.data, "test", shape=ds.shape if ds is not None else None)
    if ds is None and test.ndim > 2:
        raise SfbenchError(
            f"{args.data} holds images {list(test.shape)}; name their dataset with --dataset "
            "(digits, fashion_mnist or cifar10) for image metrics"
        )
    return test[: args.n_test] if args.n_test else test


def _load_model(args):
    from sfbench.commands.common import load_path_model

    if not (args.model or args.oracle):
        raise SfbenchError("--nll and --vlb need --model or --oracle")
    return load_path_model(args)


def _device(args, info: dict) -> str:
    """The --device a model runs on: the analytic oracle only on the CPU."""
    from sfbench.accel import resolve_device

    if info["source"] == "oracle":
        if args.device == "cuda":
            raise SfbenchError("--device cuda: the analytic oracle runs on the CPU (float64)")
        return "cpu"
    return resolve_device(args.device)


def nll_options(args):
    """The NLL ODE's settings named by this command's flags."""
    from sfbench.eval.likelihood import NLLOptions

    return NLLOptions(rtol=args.rtol, atol=args.atol, divergence=args.divergence,
                      n_probes=args.n_probes, probe_seed=args.probe_seed,
                      batch_size=args.nll_batch_size, dequant_seed=args.dequant_seed)


def run(args) -> dict:
    from sfbench.io import load_array

    if not (args.samples or args.nll or args.vlb):
        raise SfbenchError("nothing to evaluate: give --samples, --nll and/or --vlb")
    ds = _image_dataset(args)
    settings: dict = {"data": args.data, "dataset": args.dataset}
    result: dict = {}
    if args.samples and ds is not None:
        from sfbench.eval.fid import extractor_name, fid_kid, get_extractor

        samples = load_array(args.samples, "samples", shape=ds.shape)
        extractor = get_extractor(extractor_name(ds), args.classifier, ds.dim)
        res = fid_kid(samples, ds, extractor, cache_dir=args.fid_cache,
                      kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                      device=args.fid_device)
        settings.update(samples=args.samples, n_samples=int(samples.shape[0]),
                        fid_protocol=res["protocol"])
        result.update(fid=res["fid"], kid=res["kid_mean"], kid_std=res["kid_std"])
    elif args.samples:
        from sfbench.eval.distances import frechet_distance_coords, mmd, wasserstein2

        test = _test_points(args, None)
        samples = load_array(args.samples, "samples", dim=test.shape[1])
        settings.update(samples=args.samples, n_samples=int(samples.shape[0]),
                        n_test=int(test.shape[0]))
        result.update(
            w2=wasserstein2(samples, test),
            mmd=mmd(samples, test),
            fd=frechet_distance_coords(samples, test),
        )
    if args.nll or args.vlb:
        test = _test_points(args, ds)
        tic = time.perf_counter()
        model, info = _load_model(args)
        device = _device(args, info)
        if device != "cpu":
            model = model.to(device)
        result["load_seconds"] = time.perf_counter() - tic
        tic = time.perf_counter()
        settings.update(model=info, method=info.get("method"), n_test=int(test.shape[0]))
        settings["dataset"] = settings["dataset"] or info.get("dataset")
        if args.nll:
            from sfbench.eval.likelihood import measure_nll

            settings["nll"], nll = measure_nll(
                model, test, nll_options(args), levels=ds.levels if ds is not None else None,
                float64=bool(args.oracle), device=device,
            )
            result.update(nll)
        if args.vlb:
            from sfbench.eval.vlb import ddpm_vlb_bits_per_dim

            if ds is None:
                raise SfbenchError("--vlb needs an image dataset (--dataset) with discrete pixels")
            res = ddpm_vlb_bits_per_dim(model, test, ds.levels, seed=args.dequant_seed,
                                        batch_size=args.nll_batch_size, device=device)
            res.pop("bits")
            settings["vlb"] = {k: v for k, v in res.items() if "bits_per_dim" not in k}
            result.update({k: v for k, v in res.items() if "bits_per_dim" in k})
        # the likelihood computation alone (benchmarks/pipeline_overhead.py)
        result["nll_seconds"] = time.perf_counter() - tic
    return {"command": "evaluate", "settings": settings, "result": result, "outputs": []}
