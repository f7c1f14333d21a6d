"""``sfbench report``: build the comparison report from result files.

Reads the JSON records written by ``sfbench data``, ``train``, ``sweep``,
``sweep --reference`` and ``evaluate --nll`` (given as ``--results``, or found
under ``--results-dir``) and writes ``report.md``, a self-contained
``report.html``, ``tables/*.csv``, ``figures/*.png``, ``metrics.json`` and
``curves.csv`` into ``--out-dir``.
"""

from __future__ import annotations

from pathlib import Path

from sfbench.commands.common import add_result
from sfbench.errors import SfbenchError


def add_parser(sub):
    p = sub.add_parser("report", help="build the comparison report", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--results", nargs="+", help="result JSON files of the pipeline's jobs")
    src.add_argument(
        "--results-dir",
        help="take every result JSON under this directory (except the report's own)",
    )
    p.add_argument("--out-dir", required=True, help="directory of the report")
    p.add_argument("--preset", default="custom", help="name of the preset (report title)")
    p.add_argument(
        "--quality-datasets", nargs="*", default=[],
        help="datasets on which to check the W2 target ('none' for no check)",
    )
    p.add_argument(
        "--quality-factor", type=float, default=2.0,
        help="target: best W2 <= factor x W2 of independent draws",
    )
    add_result(p)
    return p


def run(args) -> dict:
    from sfbench.report.build import build_report

    if args.results:
        paths = args.results
    else:
        root = Path(args.results_dir)
        if not root.is_dir():
            raise SfbenchError(f"results directory not found: {root}")
        out = Path(args.out_dir).resolve()
        paths = sorted(
            str(p) for p in root.rglob("*.json")
            if out not in p.resolve().parents and p.name != "metrics.json"
        )
    quality = [d for d in args.quality_datasets if d != "none"]
    try:
        summary = build_report(
            paths, args.out_dir, preset=args.preset,
            quality_datasets=quality, quality_factor=args.quality_factor,
        )
    except ValueError as err:
        raise SfbenchError(str(err)) from None
    outputs = summary.pop("outputs")
    return {
        "command": "report",
        "settings": {
            "preset": args.preset,
            "out_dir": args.out_dir,
            "n_inputs": len(paths),
            "quality_datasets": quality,
            "quality_factor": args.quality_factor,
        },
        "result": summary,
        "outputs": outputs,
    }
