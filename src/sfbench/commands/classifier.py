"""``sfbench classifier``: train the digits FID feature extractor (deterministic, hashed).

The classifier is trained on the digits train split and tested on the test
split; the file's sha256 and the test accuracy go into the result record and
are written next to every FID computed with it.
"""

from __future__ import annotations

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_result
from sfbench.errors import SfbenchError


def add_parser(sub):
    p = sub.add_parser(
        "classifier", help="train the digits classifier used for FID", description=__doc__
    )
    p.add_argument("--dataset", required=True, help="digits (the only dataset it is for)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--steps", type=positive_int, help="training steps (default 1500)")
    p.add_argument("--out", required=True, help="classifier file to write")
    add_result(p)
    return p


def run(args) -> dict:
    from dataclasses import asdict

    from sfbench.data import get_dataset
    from sfbench.eval.classifier import ClassifierConfig, save_classifier, train_classifier

    if args.dataset != "digits":
        raise SfbenchError(
            f"the classifier feature extractor is for digits only, not {args.dataset!r} "
            "(28x28 and larger images use the Inception network)"
        )
    ds = get_dataset(args.dataset)
    cfg = ClassifierConfig(seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    trained = train_classifier(
        cfg, ds.load_split("train"), ds.load_labels("train"),
        ds.load_split("test"), ds.load_labels("test"),
    )
    settings = {**asdict(cfg), "dataset": ds.name, "description": ds.description}
    digest = save_classifier(args.out, trained, meta=settings)
    return {
        "command": "classifier",
        "settings": settings,
        "result": {
            "sha256": digest,
            "test_accuracy": trained.test_accuracy,
            "train_accuracy": trained.train_accuracy,
            "n_train": int(ds.load_split("train").shape[0]),
            "n_test": int(ds.load_split("test").shape[0]),
            "wall_seconds": trained.wall_seconds,
        },
        "outputs": [args.out],
    }
