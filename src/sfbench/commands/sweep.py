"""``sfbench sweep``: sample one model in every cell of a sweep and score each sample set.

The loop, the cells and the record are library code (:mod:`sfbench.sweep`);
this command reads the settings, loads the model and the test split, and
writes the samples (``--out``, one member per cell key), the plot, the NLL
record and the result. Settings come from ``--config SWEEP.yaml``
(:class:`sfbench.sweep.config.SweepConfig`, what the workflow uses; with it,
``--nll-result`` needs the file's ``nll:`` section) or, by hand, from the
flags of the "sweep settings" group: one or the other, never both. The
metrics' noise floor is ``sfbench reference``. Inside a tracked job every
cell is also a nested MLflow run of the sweep's run.
"""

from __future__ import annotations

import argparse
import time

from sfbench.commands.common import add_model_source, add_result
from sfbench.commands.names import METRICS, SOLVERS
from sfbench.errors import SfbenchError
from sfbench.sweep.flags import add_flags, check_one_source, config_from_flags


class _Moved(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("`sfbench sweep --reference` is now `sfbench reference` "
                     "(`--reference-draws` is its `--draws`)")


def add_parser(sub):
    p = sub.add_parser(
        "sweep", help="sample one model over solvers x step counts and evaluate every cell",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        # the registries' names, installed plug-ins included (names.py imports no torch)
        epilog=f"solvers: {', '.join(SOLVERS)}\n"
        f"metrics (each cell, those of the data's kind): {', '.join(METRICS)}",
    )
    add_model_source(p)
    p.add_argument("--reference", nargs=0, action=_Moved, help=argparse.SUPPRESS)
    p.add_argument("--data", required=True, help=".npz from `sfbench data` (array `test`)")
    p.add_argument("--config", help="SWEEP.yaml: the sweep's settings (SweepConfig)")
    p.add_argument("--out", required=True, help=".npz of every cell's samples")
    p.add_argument("--plot", help="PNG of the samples, one panel per cell")
    p.add_argument("--nll-result", help="also write the record of `sfbench evaluate --nll` "
                   "for this model here (in the same process)")
    images = p.add_argument_group("images (FID / KID)")
    images.add_argument("--data-dir", help="where image datasets' files are")
    images.add_argument("--classifier", help="digits classifier file (digits FID)")
    images.add_argument("--fid-features", help="cached features of the FID reference split "
                        "(written by `sfbench reference`, only read here)")
    add_flags(p)
    add_result(p)
    return p


def sweep_config(args):
    from sfbench.sweep.config import SweepConfig

    check_one_source(args)
    if args.config:
        config = SweepConfig.from_yaml(args.config)
        if args.nll_result and config.nll is None:
            raise SfbenchError(f"--nll-result needs an `nll:` section in {args.config}")
        return config
    return SweepConfig.from_dict(config_from_flags(args, nll=bool(args.nll_result)))


def image_reference(info: dict, args, config):
    """The image metrics' reference of the model's dataset (None for vector data); a sweep
    reads the cached test features, never rewrites them."""
    from sfbench.data import get_dataset
    from sfbench.eval.metrics import ImageReference
    from sfbench.sweep.config import FIDConfig

    if not info.get("dataset"):
        return None
    fid = config.fid or FIDConfig()
    return ImageReference.of(
        get_dataset(info["dataset"], args.data_dir), args.classifier,
        cache_file=args.fid_features, write_cache=False, kid_subsets=fid.kid_subsets,
        kid_subset_size=fid.kid_subset_size, device=fid.device)


def run(args) -> dict:
    config = sweep_config(args)
    config.cells()  # a bad solver, grid or option fails before the model is loaded

    from sfbench.accel import resolve_device
    from sfbench.commands.common import load_path_model
    from sfbench.io import load_array, save_npz, write_json
    from sfbench.sweep.run import run_sweep, shared_settings

    test = load_array(args.data, "test")
    tic = time.perf_counter()
    model, info = load_path_model(args)
    if resolve_device(config.device) == "cuda":
        model = model.to("cuda")
    load_seconds = time.perf_counter() - tic
    image = image_reference(info, args, config)
    common = {**shared_settings(info), "n_samples": config.n_samples or int(test.shape[0]),
              "n_test": int(test.shape[0]), "sampling_seed": config.seed,
              "held_out_seeds": list(config.held_out_seeds)}
    record, arrays = run_sweep(
        model, test, config, image=image, model_info=info, data=args.data,
        on_cell=lambda cell, row: args.log_child(*row.child_run(common)),
    )
    record.load_seconds = load_seconds
    save_npz(args.out, **arrays)
    record.outputs.append(args.out)
    if args.nll_result:
        write_json(args.nll_result, nll_record(args, config, model, info, test, image,
                                               load_seconds))
        record.outputs.append(args.nll_result)
    if args.plot:
        from sfbench.report.plots import save_image_sweep_grid, save_sweep_grid

        rows = [c.to_json() for c in record.cells]
        if image is None:
            save_sweep_grid(args.plot, arrays, rows, test, title=_title(info))
        else:
            save_image_sweep_grid(args.plot, arrays, rows, image.dataset.shape,
                                  title=_title(info))
        record.outputs.append(args.plot)
    return record.to_json()


def nll_record(args, config, model, info, test, image, load_seconds) -> dict:
    """The record ``sfbench evaluate --nll`` writes for this model (one shared function);
    inside a tracked sweep also a child run ``nll``."""
    from sfbench.eval.likelihood import NLLOptions, nll_record
    from sfbench.io import environment, load_array

    nll = config.nll
    if image is not None:  # as evaluate reads them: images of the dataset's shape
        test = load_array(args.data, "test", shape=image.dataset.shape)
    points = test[: nll.n_points] if nll.n_points else test
    record = nll_record(  # on the sweep's device, as `evaluate --nll --device` would
        model, info, points, NLLOptions(rtol=nll.rtol, atol=nll.atol), data=args.data,
        levels=image.dataset.levels if image is not None else None, load_seconds=load_seconds,
        device=config.device,
    )
    args.log_child("nll", record["settings"], record["result"])
    return {**record, "environment": environment()}


def _title(info: dict) -> str:
    if info.get("source") == "oracle":
        return f"oracle / {info.get('method')} / {info.get('dataset')}"
    if info.get("external"):  # no training seed: a model sfbench did not train
        return f"{info.get('dataset')} / {info.get('method')} ({info.get('source')})"
    return f"{info.get('dataset')} / {info.get('method')} / seed {info.get('seed')}"
