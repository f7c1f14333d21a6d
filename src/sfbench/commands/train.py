"""``sfbench train``: train one method on one dataset with one seed.

Settings come from the defaults of :class:`sfbench.train.TrainConfig`, then
``--config`` (YAML), then the flags. A rerun with the same --checkpoint-dir
resumes from the last checkpoint.

Data-parallel training on several GPUs (or CPU processes) runs the same
command under ``torchrun``, e.g. ``torchrun --nproc-per-node 4 -m sfbench
train ... --micro-batches 4``; the weights are those of a one-process run with
the same settings (:mod:`sfbench.distributed`), and only the first process
writes files.

Methods trained on given (noise, data) pairs (``reflow``, ``distill``) take
``--pairs`` (a file from ``sfbench reflow-pairs``) instead of data.
"""

from __future__ import annotations

import sys

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_result
from sfbench.commands.names import METHODS
from sfbench.errors import SfbenchError

FLAG_SETTINGS = (
    "steps",
    "batch_size",
    "micro_batches",
    "lr",
    "ema_decay",
    "warmup_steps",
    "checkpoint_every",
    "device",
    "precision",
)


def add_parser(sub):
    p = sub.add_parser("train", help="train a model", description=__doc__)
    p.add_argument(
        "--method", required=True,
        help=f"one of {', '.join(METHODS)}, or a paired method of sfbench.methods (with --pairs)"
    )
    p.add_argument("--dataset", required=True, help="dataset name (recorded; drawn if no --data)")
    p.add_argument("--data", help=".npz from `sfbench data` (array `train`)")
    p.add_argument(
        "--pairs",
        help="(noise, data) pairs of `sfbench reflow-pairs`, for a paired method (e.g. reflow)",
    )
    p.add_argument("--data-seed", type=non_negative_int, default=0)
    p.add_argument("--n-train", type=positive_int, default=20000)
    p.add_argument("--data-dir", help="where image datasets' files are (default $SFBENCH_DATA_DIR)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="training seed")
    p.add_argument("--config", help="YAML file of training settings (TrainConfig fields)")
    p.add_argument("--steps", type=positive_int)
    p.add_argument("--batch-size", type=positive_int, help="global batch of one optimizer step")
    p.add_argument(
        "--micro-batches", type=positive_int,
        help="draw and back-propagate the batch in this many pieces (gradient accumulation); "
        "under torchrun with N processes, a multiple of N, spread over them",
    )
    p.add_argument("--lr", type=float)
    p.add_argument("--ema-decay", type=float)
    p.add_argument("--warmup-steps", type=non_negative_int)
    p.add_argument("--checkpoint-every", type=positive_int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    p.add_argument("--checkpoint-dir", help="directory for resumable checkpoints")
    p.add_argument("--out", required=True, help="model file to write (EMA weights)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_result(p)
    return p


def _check_pairs_flags(args, method) -> None:
    if method.needs_pairs and not args.pairs:
        raise SfbenchError(f"--method {method.name} is trained on pairs: give --pairs FILE.npz")
    if method.needs_pairs and args.data:
        raise SfbenchError(f"--method {method.name} takes its data from --pairs, not --data")
    if args.pairs and not method.needs_pairs:
        from sfbench.methods import PAIRED_METHODS

        raise SfbenchError(
            f"--pairs is for the paired methods ({', '.join(PAIRED_METHODS)}); "
            f"{method.name} trains on --data"
        )


def _read_pairs(args, ds) -> tuple:
    """(x1 as the data, x0 as its noise, what to record of the pairs file)."""
    from sfbench.reflow import file_sha256, load_pairs

    pairs = load_pairs(args.pairs, ds.shape)
    info = {"pairs_file": args.pairs, "pairs_sha256": file_sha256(args.pairs),
            "pairs_settings": pairs.settings}
    return pairs.x1, pairs.x0, info


def run(args) -> dict:
    from dataclasses import asdict

    from sfbench.checkpoint import network_sample_shape, save_model
    from sfbench.data import get_dataset
    from sfbench.distributed import processes
    from sfbench.io import load_array
    from sfbench.methods import get_method
    from sfbench.models import network_for
    from sfbench.train import TrainConfig, train

    method = get_method(args.method)  # fail fast, listing the valid names
    _check_pairs_flags(args, method)
    ds = get_dataset(args.dataset, args.data_dir)
    from sfbench.io import read_yaml

    values = read_yaml(args.config) if args.config else {}
    values.update(method=args.method, seed=args.seed)
    values.update({k: getattr(args, k) for k in FLAG_SETTINGS if getattr(args, k) is not None})
    # Defaults of the data's shape (MLP for vectors, U-Net for images), then the config's entries.
    values["network"] = network_for(ds.shape, values.get("network"))
    cfg = TrainConfig.from_dict(values)

    noise = None
    if args.pairs:
        data, noise, data_info = _read_pairs(args, ds)
    elif args.data:
        data = load_array(args.data, "train", shape=ds.shape)
        data_info = {"data_file": args.data}
    else:
        data = ds.sample(args.n_train, args.data_seed, "train")
        data_info = {"data_seed": args.data_seed, "n_train": args.n_train}
    sample_shape = network_sample_shape(cfg.network)
    data = data.reshape(data.shape[0], *sample_shape)  # MLP on images
    if noise is not None:
        noise = noise.reshape(noise.shape[0], *sample_shape)

    progress = not args.no_progress and sys.stderr.isatty()
    result = train(cfg, data, checkpoint_dir=args.checkpoint_dir, progress=progress, noise=noise)
    if not processes().main:
        return {}  # the first process writes the model and the record
    settings = {
        **asdict(cfg),
        "dataset": ds.name,
        **data_info,
        "n_train": int(data.shape[0]),
        "sample_shape": list(ds.shape),
        "levels": ds.levels,
    }
    save_model(
        args.out,
        result.model,
        schedule_kwargs=cfg.schedule,
        network=cfg.network,
        meta={"dataset": ds.name, "seed": cfg.seed, "settings": settings},
    )
    return {
        "command": "train",
        "settings": settings,
        "result": {
            "final_loss": result.final_loss,
            "loss_history": result.loss_history,
            "wall_seconds": result.wall_seconds,
            "resumed_from_step": result.resumed_from_step,
            "device": result.device,
            "precision": result.precision,
            "schedule": result.model.schedule.describe(),
            "method": result.model.method.describe(),
        },
        "outputs": [args.out],
    }
