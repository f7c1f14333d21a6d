"""Arguments and helpers shared by several commands."""

from __future__ import annotations

import argparse

from sfbench.commands.names import METHODS
from sfbench.errors import SfbenchError


def add_result(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--result", required=True, help="JSON file for the settings and the result of this job"
    )


def add_model_source(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("model (a trained file or the analytic oracle)")
    choice = src.add_mutually_exclusive_group(required=True)
    choice.add_argument("--model", help="model file written by `sfbench train`, a diffusers "
                        "model directory, or a model spec (.yaml / .yml / .json)")
    choice.add_argument(
        "--oracle",
        action="store_true",
        help="the exact model of a Gaussian-mixture dataset (needs --method and --dataset)",
    )
    src.add_argument("--method", help=f"path of the oracle: {', '.join(METHODS)}")
    src.add_argument("--dataset", help="Gaussian-mixture dataset of the oracle; the dataset of "
                     "an external --model whose spec names none")
    add_external_name(src)


def add_external_name(group) -> None:
    group.add_argument("--name", help="what the records call an external --model (default: "
                       "its spec's name, else the file or directory name)")


def load_path_model(args) -> tuple[object, dict]:
    """The model named by --model or --oracle, and a description for the record.

    An external --model (a diffusers directory or a model spec,
    :func:`sfbench.external.load_any_model`) takes the command's --dataset when
    its spec names none."""
    from sfbench.data import get_dataset
    from sfbench.eval.oracle import GaussianMixtureOracle
    from sfbench.methods import get_method

    if args.model:
        from sfbench.checkpoint import load_model
        from sfbench.external import is_external, load_any_model

        if is_external(args.model):
            model, info = load_any_model(args.model, dataset=getattr(args, "dataset", None))
            # one model, so "seed 0" in the tables, as a trained model of one seed
            info.setdefault("seed", 0)
            if getattr(args, "name", None):
                info["method"] = args.name
            return model, info

        model = load_model(args.model)
        return model, {
            "source": "file",
            "path": args.model,
            "method": model.method.name,
            **{k: model.meta.get(k) for k in ("dataset", "seed")},
        }
    if not (args.method and args.dataset):
        raise SfbenchError("--oracle needs --method and --dataset")
    method, dataset = get_method(args.method), get_dataset(args.dataset)
    if method.needs_pairs:
        raise SfbenchError(
            f"{method.name} has no oracle: its coupling is the pairs of a trained model, "
            "whose marginal velocity has no closed form"
        )
    if dataset.mixture is None:
        raise SfbenchError(
            f"the oracle needs a Gaussian-mixture dataset; {args.dataset!r} has no closed form"
        )
    schedule = method.schedule()
    return GaussianMixtureOracle(dataset.mixture, schedule), {
        "source": "oracle",
        "method": method.name,
        "dataset": dataset.name,
        "schedule": schedule.describe(),
    }
