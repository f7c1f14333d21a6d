"""``sfbench reference``: the metrics' noise floor at a sweep's sample count.

Vector data: ``--draws`` sample sets drawn from the dataset itself, with data
seeds ``--seed``, ``--seed + 1``, ... independent of the test split of
``--data``, each scored against the test split by every registered metric
(mean and std over draws). Images (digits, fashion_mnist, cifar10): the FID /
KID floor (random train-split subsets of ``--n-samples`` images) and the
Gaussian baseline, with the dataset's pinned extractor; ``--fid-features``
caches the test split's features for the sweeps to read.
(Formerly ``sfbench sweep --reference``.)
"""

from __future__ import annotations

import argparse

from sfbench.argtypes import non_negative_int, positive_int
from sfbench.commands.common import add_result
from sfbench.commands.names import DATASETS


def add_parser(sub):
    p = sub.add_parser("reference", help="the metrics' noise floor (independent data draws)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--data", required=True, help=".npz from `sfbench data` (array `test`)")
    p.add_argument("--n-samples", type=positive_int,
                   help="points per draw: the sweep's sample count (default: n_test; "
                   "required for images)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="data seed of the first draw")
    p.add_argument("--draws", type=positive_int, default=3,
                   help="independent draws averaged; the pipeline gives as many as a "
                   "method's figure has held-out values (training seeds x held-out seeds)")
    images = p.add_argument_group("images (FID / KID)")
    images.add_argument("--data-dir", help="where image datasets' files are")
    images.add_argument("--classifier", help="digits classifier file (digits FID)")
    images.add_argument("--fid-features", help="write the test split's features here")
    images.add_argument("--kid-subsets", type=positive_int, default=100)
    images.add_argument("--kid-subset-size", type=positive_int, default=1000)
    images.add_argument("--fid-device", default="cpu", choices=("cpu", "cuda"),
                        help="device of the feature extractor")
    add_result(p)
    return p


def run(args) -> dict:
    from sfbench.data import get_dataset
    from sfbench.eval.metrics import ImageReference
    from sfbench.io import load_array
    from sfbench.sweep.reference import reference_record

    ds = get_dataset(args.dataset, args.data_dir)
    image = ImageReference.of(  # None for vector data
        ds, args.classifier, cache_file=args.fid_features, kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size, device=args.fid_device)
    test = load_array(args.data, "test")
    return reference_record(ds, test, n_samples=args.n_samples, seed=args.seed,
                            draws=args.draws, data=args.data, image=image)
