"""``sfbench data``: draw a dataset's train and test split into one .npz file.

Image datasets have fixed splits: ``--n-train`` / ``--n-test`` at or above a
split's size give the whole split (recorded as the actual count), smaller
values a subset chosen by ``--data-seed``. Arrays are float32, vectors
``[N, d]``, images ``[N, C, H, W]`` in [-1, 1].
"""

from __future__ import annotations

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_result
from sfbench.commands.names import DATASETS


def add_parser(sub):
    p = sub.add_parser("data", help="draw a dataset's train and test splits", description=__doc__)
    p.add_argument(
        "--dataset", required=True, help=f"one of {', '.join(DATASETS)} or gmm:<spec.json>"
    )
    p.add_argument("--data-seed", type=non_negative_int, default=0)
    p.add_argument("--n-train", type=positive_int, default=20000)
    p.add_argument("--n-test", type=positive_int, default=2000)
    p.add_argument("--data-dir", help="where image datasets' files are (default $SFBENCH_DATA_DIR)")
    p.add_argument("--out", required=True, help=".npz file with arrays `train` and `test`")
    add_result(p)
    return p


def run(args) -> dict:
    import hashlib

    from sfbench.data import get_dataset
    from sfbench.io import save_npz

    ds = get_dataset(args.dataset, args.data_dir)
    train = ds.sample(args.n_train, args.data_seed, "train")
    test = ds.sample(args.n_test, args.data_seed, "test")
    save_npz(args.out, train=train, test=test)
    digest = hashlib.sha256(train.tobytes() + test.tobytes()).hexdigest()
    # Vectors: the mean point; images: the mean of each channel.
    axes = 0 if len(ds.shape) == 1 else (0, *range(2, train.ndim))
    return {
        "command": "data",
        "settings": {
            "dataset": ds.name,
            "data_seed": args.data_seed,
            "n_train": int(train.shape[0]),
            "n_test": int(test.shape[0]),
            "n_train_requested": args.n_train,
            "n_test_requested": args.n_test,
            "dim": ds.dim,
            "shape": list(ds.shape),
            "levels": ds.levels,
            "fixed_splits": ds.fixed_splits,
            "description": ds.description,
        },
        "result": {
            "sha256": digest,
            "train_mean": train.mean(axes).tolist(),
            "test_mean": test.mean(axes).tolist(),
        },
        "outputs": [args.out],
    }
